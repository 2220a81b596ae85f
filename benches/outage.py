#!/usr/bin/env python3
"""Database outage trial (PostgreSQL): audited lookups run while PostgreSQL is stopped for a
while and started again, against one server process that is never restarted.

Checks, and prints:
  - every answer is 200, or 503 UNABLE_TO_CALL_SERVICE with Retry-After (no 500, no hang: the
    slowest answer is within the pool timeout and a second);
  - /_health says 503 while the database is down;
  - the same process answers 200 again after the database returns, by itself;
  - no lookup that got 200 is without its AuditEvent.

    python3 benches/outage.py BIN DATABASE_URL STOP_CMD START_CMD
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from benchlib import hs256_token

SECRET = "outage-trial-secret-of-at-least-32-bytes"
POOL_TIMEOUT_S = 2.0
LA = "E09000030"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
CHILD = "9449306753"


def token(person, role="health-care", org="RJ1"):
    return hs256_token(SECRET, person, role, org)


def call(method, url, bearer=None, body=None, timeout=15):
    headers = {"Content-Type": "application/fhir+json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def main():
    binary, database_url, stop_cmd, start_cmd = sys.argv[1:5]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = f"http://127.0.0.1:{port}"
    base = f"{root}/FHIR/R4"
    env = dict(os.environ, CPIS_DATABASE_URL=database_url, CPIS_BIND=f"127.0.0.1:{port}",
               CPIS_JWT_SECRET=SECRET, RUST_LOG="error", CPIS_DB_TIMEOUT_MS=str(int(POOL_TIMEOUT_S * 1000)))
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if call("GET", f"{root}/_health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        ops, la = token("ops", "operations", "X26"), token("la", "social-care", LA)
        call("POST", f"{base}/Organization", ops, {
            "resourceType": "Organization", "identifier": [{"system": ODS, "value": LA}], "active": True,
            "name": "Tower Hamlets", "telecom": [{"system": "phone", "value": "020 7000 0001", "use": "work"},
                                                  {"system": "phone", "value": "020 7000 0999", "use": "mobile"}]})
        status, _, _ = call("POST", f"{base}/EpisodeOfCare", la, {
            "resourceType": "EpisodeOfCare", "identifier": [{"system": "https://fhir.e09000030.gov.uk/Id/plan", "value": "O-1"}],
            "status": "active", "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
            "patient": {"identifier": {"system": NHS, "value": CHILD}},
            "managingOrganization": {"identifier": {"system": ODS, "value": LA}}, "period": {"start": "2026-01-05"}})
        assert status == 201, status

        stop, lock = threading.Event(), threading.Lock()
        answers, acknowledged, bad = {}, set(), []
        slowest = [0.0]
        counter = iter(range(10**9))

        def lookups():
            while not stop.is_set():
                with lock:
                    person = f"outage-{next(counter)}"
                started = time.time()
                try:
                    status, headers, body = call("GET", f"{base}/Flag?patient:identifier={NHS}|{CHILD}", token(person))
                except OSError as e:
                    status, headers, body = None, {}, str(e).encode()
                took = time.time() - started
                with lock:
                    slowest[0] = max(slowest[0], took)
                    answers[status] = answers.get(status, 0) + 1
                    if status == 200:
                        acknowledged.add(person)
                    elif status == 503 and headers.get("Retry-After") and b"UNABLE_TO_CALL_SERVICE" in body:
                        pass
                    else:
                        bad.append((status, body[:200]))
                time.sleep(0.01)

        workers = [threading.Thread(target=lookups) for _ in range(6)]
        for w in workers:
            w.start()
        time.sleep(3)
        subprocess.run(stop_cmd, shell=True, check=True)
        time.sleep(1)
        health_down = call("GET", f"{root}/_health", timeout=POOL_TIMEOUT_S + 2)[0]
        time.sleep(5)
        subprocess.run(start_cmd, shell=True, check=True)
        recovered_after = None
        began = time.time()
        while time.time() - began < 30:
            if call("GET", f"{base}/Flag?patient:identifier={NHS}|{CHILD}", token("probe"))[0] == 200:
                recovered_after = time.time() - began
                break
            time.sleep(0.2)
        time.sleep(3)
        stop.set()
        for w in workers:
            w.join()
        health_up = call("GET", f"{root}/_health")[0]
        found, url = set(), f"{base}/AuditEvent?_count=500"
        while url:
            status, _, body = call("GET", url, ops, timeout=30)
            bundle = json.loads(body)
            found |= {e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in bundle.get("entry", [])}
            url = next((l["url"] for l in bundle.get("link", []) if l["relation"] == "next"), None)
        lost = len(acknowledged - found)
        alive = server.poll() is None
        print(f"answers={dict(sorted(answers.items(), key=lambda kv: str(kv[0])))} other_answers={len(bad)} "
              f"slowest_s={slowest[0]:.2f} health_down={health_down} health_after={health_up} "
              f"recovered_after_s={recovered_after if recovered_after is None else round(recovered_after, 1)} "
              f"lost_audit={lost} same_process={alive}")
        for b in bad[:5]:
            print("  unexpected:", b)
        ok = (not bad and slowest[0] <= POOL_TIMEOUT_S + 1 and health_down == 503 and health_up == 200
              and recovered_after is not None and lost == 0 and alive and answers.get(503, 0) > 0)
        sys.exit(0 if ok else 1)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
