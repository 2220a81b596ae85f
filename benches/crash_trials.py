#!/usr/bin/env python3
"""Crash trials: the server is SIGKILLed at a random moment while it records accesses, takes
uploads and delivers notifications, then started again; nothing it acknowledged may be lost.

Each trial starts `cpis serve` on the same database and drives, for a random 0.3-2.5 s:
  - audited lookups (health-care, unscheduled, each by a new person so every access is shown),
  - transaction uploads of 20 plans (all for one new NHS number, so all-or-none is countable),
  - deliveries to a local receiver subscribed for the LA;
then SIGKILLs it, starts it again (a restart that does not answer /_health in 30 s fails),
waits for the outbox to drain and checks:
  - lost_audit: lookups that got 200 whose access has no AuditEvent;
  - lost_notifications: shown accesses whose notification never reached the receiver
    (duplicates are allowed: the same X-CPIS-Notification-Id);
  - partial_uploads: transaction uploads with neither all nor none of their plans.
Prints `trials=N lost_audit=0 lost_notifications=0 partial_uploads=0 failed_restarts=0`.

    python3 benches/crash_trials.py BIN DATABASE_URL TRIALS
Loopback only; every child process is stopped on exit.
"""
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from benchlib import hs256_token, nhs_number

LA = "E09000030"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
SYSTEM = "https://fhir.e09000030.gov.uk/Id/plan"
SECRET = "crash-trials-secret-of-at-least-32-bytes"


def health_token(person):
    return hs256_token(SECRET, person, "health-care", "RJ1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    received = set()  # AuditEvent ids delivered
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = json.loads(body)
            with Receiver.lock:
                Receiver.received.add(event["id"])
        except (ValueError, KeyError):
            pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, binary, database_url):
        self.binary, self.port = binary, free_port()
        self.base = f"http://127.0.0.1:{self.port}/FHIR/R4"
        self.env = dict(os.environ, CPIS_DATABASE_URL=database_url, CPIS_BIND=f"127.0.0.1:{self.port}",
                        CPIS_JWT_SECRET=SECRET, RUST_LOG="error", CPIS_NOTIFY_ALLOW_PRIVATE_NETWORKS="1",
                        CPIS_NOTIFY_POLL_MS="100", CPIS_NOTIFY_RETRY_BASE_MS="100",
                        CPIS_NOTIFY_RETRY_MAX_MS="500", CPIS_NOTIFY_TIMEOUT_MS="2000")
        self.process = None

    def start(self):
        self.process = subprocess.Popen([self.binary, "serve"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_health", timeout=1) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        return False

    def kill9(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def token(self, *args):
        return subprocess.run([self.binary, "token", "--ttl", "7200", *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()


def call(method, url, token, body=None, timeout=10):
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


def plan(nhs, reference):
    return {"resourceType": "EpisodeOfCare", "identifier": [{"system": SYSTEM, "value": reference}],
            "status": "active", "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
            "patient": {"identifier": {"system": NHS, "value": nhs}},
            "managingOrganization": {"identifier": {"system": ODS, "value": LA}},
            "period": {"start": "2026-01-05"}}


def all_events(server, token):
    found, url = [], f"{server.base}/AuditEvent?_count=500"
    while url:
        status, bundle = call("GET", url, token, timeout=30)
        if status != 200:
            raise RuntimeError(f"AuditEvent search answered {status}")
        found += [e["resource"] for e in bundle.get("entry", [])]
        url = next((l["url"] for l in bundle.get("link", []) if l["relation"] == "next"), None)
    return found


def main():
    binary, database_url, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    random.seed(int(os.environ.get("SEED", "7")))
    receiver_port = free_port()
    # The dispatcher delivers up to 64 at once: a listen backlog that takes them all.
    http.server.ThreadingHTTPServer.request_queue_size = 256
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", receiver_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    server = Server(binary, database_url)
    if not server.start():
        sys.exit("the server did not start")
    ops = server.token("--role", "operations", "--org", "X26")
    la = server.token("--role", "social-care", "--org", LA)
    status, _ = call("POST", f"{server.base}/Organization", ops, {
        "resourceType": "Organization", "identifier": [{"system": ODS, "value": LA}], "active": True,
        "name": "Tower Hamlets", "telecom": [{"system": "phone", "value": "020 7000 0001", "use": "work"},
                                              {"system": "phone", "value": "020 7000 0999", "use": "mobile"}]})
    assert status == 201, status
    children = [nhs_number(400_000_000 + 13 * i) for i in range(30)]
    status, _ = call("POST", server.base, la, {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": plan(nhs, f"C-{i}"), "request": {"method": "PUT", "url": f"EpisodeOfCare?identifier={SYSTEM}|C-{i}"}}
        for i, nhs in enumerate(children)]})
    assert status == 200, status
    status, _ = call("POST", f"{server.base}/Subscription", la, {
        "resourceType": "Subscription", "status": "requested", "reason": "crash trials", "criteria": "AuditEvent?",
        "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{receiver_port}/notify",
                    "payload": "application/fhir+json"}})
    assert status == 201, status

    people = iter(range(10**9))
    acknowledged = set()  # people whose lookup got 200
    uploads = []  # (nhs, acknowledged)
    lost_audit = lost_notifications = partial = failed_restarts = 0
    for trial in range(trials):
        stop = threading.Event()
        lock = threading.Lock()

        def lookups():
            while not stop.is_set():
                with lock:
                    person = f"crash-{next(people)}"
                token = health_token(person)
                status, _ = call("GET", f"{server.base}/Flag?patient:identifier={NHS}|{random.choice(children)}", token, timeout=5)
                if status == 200:
                    with lock:
                        acknowledged.add(person)

        def transactions():
            k = 0
            while not stop.is_set():
                nhs = nhs_number(600_000_000 + 97 * (trial * 1000 + k))
                entries = [{"resource": plan(nhs, f"T{trial}-{k}-{i}"),
                            "request": {"method": "POST", "url": "EpisodeOfCare"}} for i in range(20)]
                status, _ = call("POST", server.base, la, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, timeout=10)
                with lock:
                    uploads.append((nhs, status == 200))
                k += 1

        workers = [threading.Thread(target=lookups) for _ in range(4)] + [threading.Thread(target=transactions)]
        for w in workers:
            w.start()
        time.sleep(random.uniform(0.3, 2.5))
        server.kill9()
        stop.set()
        for w in workers:
            w.join()
        if not server.start():
            failed_restarts += 1
            server.kill9()
            if not server.start():
                sys.exit("the server does not start again")
    # Every acknowledged lookup has its AuditEvent; every shown access reaches the receiver.
    events = all_events(server, ops)
    recorded = {e["agent"][0]["who"]["identifier"]["value"] for e in events}
    lost_audit = len(acknowledged - recorded)
    shown = {e["id"] for e in all_events(server, la)}
    deadline = time.time() + 120
    while time.time() < deadline and not shown <= Receiver.received:
        time.sleep(0.2)
    lost_notifications = len(shown - Receiver.received)
    for nhs, _ in uploads:
        status, bundle = call("GET", f"{server.base}/EpisodeOfCare?patient:identifier={NHS}|{nhs}&_count=0", la)
        if status != 200 or bundle["total"] not in (0, 20):
            partial += 1
    lost_acknowledged_uploads = 0
    for nhs, ok in uploads:
        if ok:
            _, bundle = call("GET", f"{server.base}/EpisodeOfCare?patient:identifier={NHS}|{nhs}&_count=0", la)
            lost_acknowledged_uploads += bundle["total"] != 20
    server.kill9()
    receiver.shutdown()
    print(f"lookups_acknowledged={len(acknowledged)} accesses_shown={len(shown)} uploads={len(uploads)} "
          f"uploads_acknowledged_lost={lost_acknowledged_uploads}")
    print(f"trials={trials} lost_audit={lost_audit} lost_notifications={lost_notifications} "
          f"partial_uploads={partial} failed_restarts={failed_restarts}")
    sys.exit(0 if lost_audit == lost_notifications == partial == failed_restarts == lost_acknowledged_uploads == 0 else 1)


if __name__ == "__main__":
    main()
