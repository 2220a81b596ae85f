"""fhirpy (PyPI) against the sandbox, as an integrator would write it: count(), sort(),
elements(), fetch_all(), get_or_create() (If-None-Exist), read. Every resource received is
saved for validation with @medplum/core. Any error fails the run.

    python fhirpy_check.py BASE HEALTH_TOKEN SOCIAL_TOKEN OPS_TOKEN OUT_DIR
"""
import json
import pathlib
import sys

from fhirpy import SyncFHIRClient

base, health, social, ops, out = sys.argv[1:6]
out = pathlib.Path(out)
out.mkdir(parents=True, exist_ok=True)
NHS = "https://fhir.nhs.uk/Id/nhs-number|9449306753"
received = []


def keep(resource):
    data = resource.serialize() if hasattr(resource, "serialize") else resource
    received.append(data)
    return data


def client(token):
    return SyncFHIRClient(base, authorization=f"Bearer {token}")


def check(condition, what):
    if not condition:
        raise SystemExit(f"fhirpy: {what}")
    print(f"fhirpy: ok - {what}")


clinician, la, operations = client(health), client(social), client(ops)

# A clinician's lookup, counted, and read with elements().
# A modifier the client does not know is passed by name (fhirpy would read __ as a chain).
flags = clinician.resources("Flag").search(**{"patient:identifier": NHS})
check(flags.count() >= 1, "count() of a child's Flags (_count=0, _totalMethod=count)")
found = flags.elements("status", "period").fetch()
check(found and all(f.get("status") for f in found), "elements() keeps what was asked")
for flag in found:
    keep(flag)
check(
    any(t.get("code") == "SUBSETTED" for t in found[0].get("meta", {}).get("tag", [])),
    "elements() answers are tagged SUBSETTED",
)

# get_or_create: a conditional create (If-None-Exist). Twice for each plan: created once.
SYSTEM = "https://fhir.e09000030.gov.uk/Id/plan"


def plan(reference, nhs, start):
    return {
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": SYSTEM, "value": reference}],
        "status": "active",
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
        "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}},
        "managingOrganization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "E09000030"}},
        "period": {"start": start},
    }


for reference, nhs, start in [("FHIRPY-1", "9000000009", "2025-03-01"), ("FHIRPY-2", "9912003888", "2026-02-01")]:
    # FHIR's conditional create: the search in If-None-Exist (not in the URL, which is 400).
    conditional = SyncFHIRClient(
        base, authorization=f"Bearer {social}", extra_headers={"If-None-Exist": f"identifier={SYSTEM}|{reference}"}
    )
    resource = plan(reference, nhs, start)
    created, was_created = conditional.resources("EpisodeOfCare").get_or_create(conditional.resource("EpisodeOfCare", **resource))
    again, created_again = conditional.resources("EpisodeOfCare").get_or_create(conditional.resource("EpisodeOfCare", **resource))
    check(was_created and not created_again and created["id"] == again["id"], f"get_or_create() with If-None-Exist creates {reference} once")
    keep(created)

# The LA browses its own plans, sorted, every page.
plans = la.resources("EpisodeOfCare").sort("-_lastUpdated").limit(2).fetch_all()
check(len(plans) >= 3, f"fetch_all() follows next links ({len(plans)} plans)")
stamps = [p["meta"]["lastUpdated"] for p in plans]
check(stamps == sorted(stamps, reverse=True), "sort('-_lastUpdated') orders newest first")
for p in plans:
    keep(p)
ascending = la.resources("EpisodeOfCare").sort("date").fetch()
starts = [p["period"]["start"] for p in ascending]
check(starts == sorted(starts), "sort('date') orders by the plan's start")

# Read by id, and the LA's Organization.
keep(la.resources("EpisodeOfCare").search(_id=plans[0]["id"]).get())
keep(operations.resources("Organization").search(identifier="E09000030").get())

for n, resource in enumerate(received):
    (out / f"fhirpy-{n:03d}.json").write_text(json.dumps(resource))
print(f"fhirpy: {len(received)} resources saved")
