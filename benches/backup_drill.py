#!/usr/bin/env python3
"""The backup drill's client side (benches/backup_drill.sh).

    backup_drill.py drive BASE SECRET LOG STOPFILE
        Until STOPFILE exists: audited lookups (health-care, unscheduled, a new person each, of
        the children in BASE's seeded list) and batch uploads of 20 new plans for LA L00000.
        LOG gets one line per acknowledgement, with the time it arrived (epoch ms):
        `lookup <person> <ms>` for a 200, `plan <system> <value> <ms>` for a 2xx entry.

    backup_drill.py check WORK T0_MS ORIGINAL RESTORED SECRET LAS
        Against the restored database file (WORK/restored.db) and the two servers' base URLs:
        every plan acknowledged before T0 (seeded: WORK/nhs.txt; uploaded: WORK/driver.log) is
        in it, every lookup answered 200 before T0 has its AuditEvent there, and the restored
        server answers the control children's lookups (as health-care and as their LA) and the
        first LAS LAs' pull of AuditEvents up to T0 exactly as the original does. Prints the
        counts and exits 1 on any difference.
"""
import json
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from benchlib import hs256_token, nhs_numbers

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
UPLOAD_LA = "L00000"
CONTROL = 50  # seeded children no load touches: the last CONTROL lines of nhs.txt


def ods(i):
    return f"L{i:05d}"


def plan_system(la):
    return f"https://fhir.{la.lower()}.gov.uk/Id/plan"


def call(method, url, token, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return None, None


def now_ms():
    return int(time.time() * 1000)


def seeded(work):
    """(nhs, la-index) of every seeded plan, in seed order."""
    with open(os.path.join(work, "nhs.txt")) as f:
        return [(nhs, int(la)) for nhs, la in (line.split() for line in f)]


def drive(base, secret, log_path, stopfile):
    work = os.path.dirname(log_path)
    children = [nhs for nhs, _ in seeded(work)][:-CONTROL]
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()
    people = iter(range(10**9))

    def lookups():
        rng = random.Random()
        while not os.path.exists(stopfile):
            with lock:
                person = f"drill-{next(people)}"
            token = hs256_token(secret, person, "health-care", "RJ1")
            status, _ = call("GET", f"{base}/Flag?patient:identifier={NHS}|{rng.choice(children)}", token)
            if status == 200:
                with lock:
                    log.write(f"lookup {person} {now_ms()}\n")

    def uploads():
        token = hs256_token(secret, "drill-la", "social-care", UPLOAD_LA)
        system = plan_system(UPLOAD_LA)
        numbers = nhs_numbers(700_000_000)
        batch = 0
        while not os.path.exists(stopfile):
            entries = []
            for i in range(20):
                reference = f"D-{batch}-{i}"
                entries.append({"resource": {
                    "resourceType": "EpisodeOfCare",
                    "identifier": [{"system": system, "value": reference}],
                    "status": "active",
                    "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
                    "patient": {"identifier": {"system": NHS, "value": next(numbers)}},
                    "managingOrganization": {"identifier": {"system": ODS, "value": UPLOAD_LA}},
                    "period": {"start": "2026-01-05"}},
                    "request": {"method": "PUT", "url": f"EpisodeOfCare?identifier={system}|{reference}"}})
            status, bundle = call("POST", base, token, {"resourceType": "Bundle", "type": "batch", "entry": entries})
            at = now_ms()
            if status == 200:
                with lock:
                    for entry, answer in zip(entries, bundle["entry"]):
                        if answer["response"]["status"].startswith("2"):
                            identifier = entry["resource"]["identifier"][0]
                            log.write(f"plan {identifier['system']} {identifier['value']} {at}\n")
            batch += 1

    threads = [threading.Thread(target=lookups) for _ in range(2)] + [threading.Thread(target=uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def pages(base, query, token):
    """Every resource of a search, following `next`."""
    found, url = [], f"{base}/{query}"
    while url:
        status, bundle = call("GET", url, token, timeout=60)
        if status != 200:
            raise RuntimeError(f"{url}: {status}")
        found += [e["resource"] for e in bundle.get("entry", [])]
        url = next((l["url"] for l in bundle.get("link", []) if l["relation"] == "next"), None)
    return found


def check(work, t0, original, restored, secret, las):
    db = sqlite3.connect(f"file:{os.path.join(work, 'restored.db')}?mode=ro", uri=True)
    identifiers = set(db.execute(
        "SELECT system, value FROM unique_identifiers WHERE resource_type = 'EpisodeOfCare'"))
    subs = {row[0] for row in db.execute("SELECT DISTINCT agent_sub FROM audit_events")}
    acked_plans, acked_lookups = set(), set()
    counters = {}
    for nhs, la in seeded(work):
        counters[la] = counters.get(la, -1) + 1
        acked_plans.add((plan_system(ods(la)), f"P-{counters[la]}"))
    during_plans = during_lookups = 0
    with open(os.path.join(work, "driver.log")) as f:
        for line in f:
            parts = line.split()
            at = int(parts[-1])
            if parts[0] == "plan":
                if at < t0:
                    acked_plans.add((parts[1], parts[2]))
                else:
                    during_plans += 1
            elif parts[0] == "lookup":
                if at < t0:
                    acked_lookups.add(parts[1])
                else:
                    during_lookups += 1
    missing_plans = acked_plans - identifiers
    missing_lookups = acked_lookups - subs
    print(f"plans acknowledged before the backup began: {len(acked_plans)}, in the restored database: "
          f"{len(acked_plans) - len(missing_plans)} (it holds {len(identifiers)} plan identifiers; "
          f"{during_plans} more were acknowledged during the backups)")
    print(f"tracked lookups answered 200 before the backup began: {len(acked_lookups)}, with their AuditEvent in "
          f"the restored database: {len(acked_lookups) - len(missing_lookups)} ({during_lookups} more answered "
          f"during the backups)")

    differences = 0
    control = seeded(work)[-CONTROL:]
    health = hs256_token(secret, "drill-compare", "health-care", "RJ1", name="Drill Comparer")
    for nhs, la in control:
        query = f"Flag?patient:identifier={NHS}|{nhs}&_include=Flag:author"
        la_token = hs256_token(secret, "drill-la-compare", "social-care", ods(la))
        for token in (health, la_token):
            if pages(original, query, token) != pages(restored, query, token):
                differences += 1
    t0_param = urllib.parse.quote(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 / 1000))
                                  + f".{t0 % 1000:03d}+00:00")
    pulled = 0
    for i in range(las):
        token = hs256_token(secret, "drill-pull", "social-care", ods(i))
        query = f"AuditEvent?_count=500&_lastUpdated=le{t0_param}"
        before, after = pages(original, query, token), pages(restored, query, token)
        pulled += len(before)
        if before != after:
            differences += 1
            print(f"{ods(i)}'s pull differs: original {len(before)}, restored {len(after)}")
    print(f"control lookups compared: {2 * len(control)} (health-care and the child's LA), LA pulls up to the "
          f"backup's start compared: {las} ({pulled} AuditEvents); differences: {differences}")
    ok = not missing_plans and not missing_lookups and differences == 0
    json.dump({"acknowledged_plans": len(acked_plans), "restored_acknowledged_plans": len(acked_plans) - len(missing_plans),
               "acknowledged_lookups": len(acked_lookups),
               "restored_acknowledged_lookups": len(acked_lookups) - len(missing_lookups),
               "answer_differences": differences}, open(os.path.join(work, "check.json"), "w"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if sys.argv[1] == "drive":
        drive(*sys.argv[2:6])
    elif sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))
    else:
        sys.exit(__doc__)
