#!/usr/bin/env python3
"""Validates sample responses of a running CP-IS server with an independent validator: the
R4B models of the `fhir.resources` package (pydantic; every element typed, unknown elements
rejected). The server's own tests check its output against fhir-profiles/; this checks the
same output against FHIR itself, as another implementation reads it.

    CPIS_BASE=http://127.0.0.1:18081/FHIR/R4 HEALTH_TOKEN=… SOCIAL_TOKEN=… OPS_TOKEN=… \\
        python3 .ci/fhir_resources_check.py

The server must be a fresh sandbox (CPIS_SANDBOX=1): the checks read its seeded plan for
9449306753 (LA E09000030) and make one update of it, to have a history of two versions.
Prints one line per response checked and exits non-zero if any fails.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from fhir.resources.R4B import get_fhir_model_class

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
CHILD = "9449306753"
LA = "E09000030"

BASE = os.environ["CPIS_BASE"].rstrip("/")
# NHS England's views, at the server's root (the native base without /FHIR/R4).
ROOT = BASE[: -len("/FHIR/R4")] if BASE.endswith("/FHIR/R4") else BASE
CPIS_VIEW = ROOT + "/cpis/FHIR/R4"
FLAG_VIEW = ROOT + "/patient-flags-api/FHIR/R4"
TOKENS = {
    "health": os.environ["HEALTH_TOKEN"],
    "social": os.environ["SOCIAL_TOKEN"],
    "ops": os.environ["OPS_TOKEN"],
}

failures = []
checked = 0


def call(method, path, token=None, body=None):
    """(status, parsed JSON body) of one request."""
    data = None if body is None else json.dumps(body).encode()
    url = path if path.startswith("http") else BASE + path
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/fhir+json")
    if token:
        req.add_header("Authorization", "Bearer " + TOKENS[token])
    if data is not None:
        req.add_header("Content-Type", "application/fhir+json")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def check(name, method, path, token=None, body=None, status=200, resource_type=None):
    """Sends a request, expects `status` and a `resource_type`, and validates the body with
    the R4B model of its resourceType. Returns the body (None if the check failed)."""
    global checked
    checked += 1
    got, value = call(method, path, token, body)
    where = f"{method} {path}"
    if got != status:
        failures.append(name)
        print(f"FAIL {name}: {where} answered {got}, expected {status}: {value}")
        return None
    ty = value.get("resourceType") if isinstance(value, dict) else None
    if ty != resource_type:
        failures.append(name)
        print(f"FAIL {name}: {where} returned {ty}, expected {resource_type}")
        return None
    try:
        get_fhir_model_class(ty).model_validate(value)
    except Exception as err:  # pydantic.ValidationError, or an unknown resource type
        failures.append(name)
        print(f"FAIL {name}: {where}: the {ty} is not valid FHIR R4B:\n{err}")
        return None
    detail = ""
    if ty == "Bundle":
        kinds = [e["resource"]["resourceType"] for e in value.get("entry", []) if "resource" in e]
        detail = f" ({value.get('type')}, {len(value.get('entry', []))} entries: {', '.join(kinds) or 'none'})"
    elif ty == "OperationOutcome":
        codes = [i.get("details", {}).get("coding", [{}])[0].get("code", i.get("code")) for i in value["issue"]]
        detail = f" ({', '.join(codes)})"
    print(f"ok   {name}: {where} -> {got} {ty}{detail}")
    return value


def main():
    check("CapabilityStatement", "GET", "/metadata", resource_type="CapabilityStatement")

    flags = check(
        "Flag search with _include=Flag:author", "GET",
        f"/Flag?patient:identifier={NHS}|{CHILD}&_include=Flag:author", "health",
        resource_type="Bundle",
    )
    plans = check(
        "EpisodeOfCare search with _include", "GET",
        f"/EpisodeOfCare?patient:identifier={NHS}|{CHILD}&_include=EpisodeOfCare:organization",
        "health", resource_type="Bundle",
    )
    if flags and plans:
        flag_id = flags["entry"][0]["resource"]["id"]
        check("Flag read", "GET", f"/Flag/{flag_id}", "health", resource_type="Flag")
        plan = check("EpisodeOfCare read", "GET", f"/EpisodeOfCare/{flag_id}", "social",
                     resource_type="EpisodeOfCare")
        if plan:
            plan["period"]["end"] = "2027-01-04"
            check("EpisodeOfCare update", "PUT", f"/EpisodeOfCare/{plan['id']}", "social", plan,
                  resource_type="EpisodeOfCare")
            check("EpisodeOfCare history", "GET", f"/EpisodeOfCare/{plan['id']}/_history",
                  "social", resource_type="Bundle")
            check("Flag history", "GET", f"/Flag/{plan['id']}/_history", "social",
                  resource_type="Bundle")
    las = check("Organization search", "GET", f"/Organization?identifier={ODS}|{LA}", "health",
                resource_type="Bundle")
    if las and las.get("entry"):
        check("Organization read", "GET", f"/Organization/{las['entry'][0]['resource']['id']}",
              "health", resource_type="Organization")

    bad_plan = {
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": "https://fhir.e09000030.gov.uk/Id/plan", "value": "CI-1"}],
        "status": "planned",
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
        "patient": {"identifier": {"system": NHS, "value": "9449306754"}},
        "managingOrganization": {"identifier": {"system": ODS, "value": LA}},
        "period": {"end": "2026-01-01"},
        "reason": [{"text": "not shared"}],
    }
    check("OperationOutcome: 422 invalid plan", "POST", "/EpisodeOfCare", "social", bad_plan,
          status=422, resource_type="OperationOutcome")
    check("OperationOutcome: $validate errors", "POST", "/EpisodeOfCare/$validate", "social",
          bad_plan, resource_type="OperationOutcome")
    check("OperationOutcome: 400 search without NHS number", "GET", "/Flag", "health",
          status=400, resource_type="OperationOutcome")
    check("OperationOutcome: 401 without a token", "GET", "/Flag", status=401,
          resource_type="OperationOutcome")
    check("OperationOutcome: 404 unknown id", "GET", "/Organization/does-not-exist", "ops",
          status=404, resource_type="OperationOutcome")

    # The lookups above were recorded: the access history, as a clinician and as operations.
    history = check("AuditEvent search (access history)", "GET",
                    f"/AuditEvent?patient:identifier={NHS}|{CHILD}", "health",
                    resource_type="Bundle")
    check("AuditEvent search (operations)", "GET", "/AuditEvent", "ops", resource_type="Bundle")
    if history and history.get("entry"):
        check("AuditEvent read", "GET", f"/AuditEvent/{history['entry'][0]['resource']['id']}",
              "ops", resource_type="AuditEvent")
    subscription = {
        "resourceType": "Subscription", "status": "requested", "criteria": "AuditEvent?",
        "reason": "fhir.resources check",
        "channel": {"type": "rest-hook", "endpoint": "https://notify.example.org/cpis",
                    "payload": "application/fhir+json"},
    }
    created = check("Subscription create", "POST", "/Subscription", "social", subscription,
                    status=201, resource_type="Subscription")
    if created:
        check("Subscription search", "GET", "/Subscription?status=active", "social",
              resource_type="Bundle")

    check_views()
    check_attendance_extension(history)

    print(f"\nfhir.resources R4B: {checked - len(failures)} of {checked} responses valid")
    if failures:
        print("invalid: " + "; ".join(failures))
        return 1
    return 0


def check_attendance_extension(history):
    """The repeated-attendance extension: its StructureDefinition is valid R4B, and the
    unscheduled accesses in the history carry it (validated with them above)."""
    global checked
    checked += 1
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fhir-profiles", "StructureDefinition-attendance-summary.json")
    try:
        with open(path) as f:
            get_fhir_model_class("StructureDefinition").model_validate(json.load(f))
        print("ok   StructureDefinition attendance-summary: valid")
    except Exception as err:
        failures.append("StructureDefinition attendance-summary")
        print(f"FAIL StructureDefinition attendance-summary: {err}")
    checked += 1
    url = "https://fhir.cpis.example.org/StructureDefinition/attendance-summary"
    carried = [
        e for e in (history or {}).get("entry", [])
        if any(x.get("url") == url for x in e["resource"].get("extension", []))
    ]
    if carried:
        print(f"ok   attendance-summary extension on {len(carried)} AuditEvent(s) of the history")
    else:
        failures.append("attendance-summary extension")
        print("FAIL no AuditEvent of the history carries the attendance-summary extension")


def check_views():
    """Every resource NHS England's views return (NHS-COMPAT.md), and their errors."""
    check("CP-IS view: CapabilityStatement", "GET", f"{CPIS_VIEW}/metadata",
          resource_type="CapabilityStatement")
    teams = check("CP-IS view: CareTeam search", "GET",
                  f"{CPIS_VIEW}/CareTeam?patient:identifier={NHS}|{CHILD}", "health",
                  resource_type="Bundle")
    if teams and teams.get("entry"):
        check("CP-IS view: CareTeam read", "GET",
              f"{CPIS_VIEW}/CareTeam/{teams['entry'][0]['resource']['id']}", "health",
              resource_type="CareTeam")
    check("CP-IS view: AuditEvent search with PractitionerRoles", "GET",
          f"{CPIS_VIEW}/AuditEvent?patient={CHILD}&_include=AuditEvent:agent", "health",
          resource_type="Bundle")
    check("CP-IS view: OperationOutcome 400 invalid NHS number", "GET",
          f"{CPIS_VIEW}/CareTeam?patient=9449306754", "health", status=400,
          resource_type="OperationOutcome")
    check("CP-IS view: OperationOutcome 403 social-care", "GET",
          f"{CPIS_VIEW}/CareTeam?patient={CHILD}", "social", status=403,
          resource_type="OperationOutcome")
    check("Patient Flag view: CapabilityStatement", "GET", f"{FLAG_VIEW}/metadata",
          resource_type="CapabilityStatement")
    flags = check("Patient Flag view: PatientFlag search with code", "GET",
                  f"{FLAG_VIEW}/PatientFlag?patient={CHILD}&code=child-protection-information-system-flag",
                  "health", resource_type="Bundle")
    for entry in (flags or {}).get("entry", []):
        resource = entry["resource"]
        ty = resource["resourceType"]
        check(f"Patient Flag view: {ty} read", "GET", f"{FLAG_VIEW}/{ty}/{resource['id']}", "health",
              resource_type=ty)


if __name__ == "__main__":
    sys.exit(main())
