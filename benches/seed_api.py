#!/usr/bin/env python3
"""Fills a running server through its API, as production is filled: `operations` creates LAS
local authorities (POST Organization), then each LA uploads its share of PLANS plans as batch
Bundles of conditional PUTs (at most CHUNK entries each), as `cpis import` and LA systems do.
Nothing is tuned by hand: no ANALYZE, no direct database access.

Writes the seeded NHS numbers to OUT, one per line, as `<nhs> <la-index>`.

    python3 benches/seed_api.py BASE PLANS LAS OUT CPIS_BINARY [CHUNK]
"""
import json
import subprocess
import sys
import urllib.request

from benchlib import nhs_numbers

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
PLAN_TYPES = ("342191000000101", "764841000000100", "818901000000100")


def token(binary, *args):
    return subprocess.run([binary, "token", "--ttl", "7200", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def post(url, bearer, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {bearer}", "Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.status, json.load(response)


def ods(i):
    return f"L{i:05d}"


def main():
    base, plans, las, out, binary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    chunk = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    operations = token(binary, "--role", "operations", "--org", "X26")
    for i in range(las):
        status, _ = post(f"{base}/Organization", operations, {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": ods(i)}],
            "active": True,
            "name": f"Bench LA {ods(i)}",
            "telecom": [{"system": "phone", "value": "020 7000 0001", "use": "work"},
                        {"system": "phone", "value": "020 7000 0999", "use": "mobile"}]})
        assert status == 201, status
    numbers = nhs_numbers(500_000_000)
    seeded = []
    accepted = 0
    for i in range(las):
        share = plans // las + (1 if i < plans % las else 0)
        la_token = token(binary, "--role", "social-care", "--org", ods(i))
        system = f"https://fhir.{ods(i).lower()}.gov.uk/Id/plan"
        mine = [next(numbers) for _ in range(share)]
        for start in range(0, share, chunk):
            entries = []
            for k, nhs in enumerate(mine[start:start + chunk], start):
                reference = f"P-{k}"
                entries.append({"resource": {
                    "resourceType": "EpisodeOfCare",
                    "identifier": [{"system": system, "value": reference}],
                    "status": "active",
                    "type": [{"coding": [{"system": "http://snomed.info/sct", "code": PLAN_TYPES[k % 3]}]}],
                    "patient": {"identifier": {"system": NHS_SYSTEM, "value": nhs}},
                    "managingOrganization": {"identifier": {"system": ODS_SYSTEM, "value": ods(i)}},
                    "period": {"start": "2026-01-05"}},
                    "request": {"method": "PUT", "url": f"EpisodeOfCare?identifier={system}|{reference}"}})
            status, response = post(base, la_token, {"resourceType": "Bundle", "type": "batch", "entry": entries})
            assert status == 200, status
            accepted += sum(1 for e in response["entry"] if e["response"]["status"].startswith("20"))
        seeded.extend((nhs, i) for nhs in mine)
    with open(out, "w") as f:
        f.writelines(f"{nhs} {i}\n" for nhs, i in seeded)
    print(f"seeded {accepted} of {plans} plans of {las} LAs through the API", file=sys.stderr)
    if accepted != plans:
        sys.exit(1)


if __name__ == "__main__":
    main()
