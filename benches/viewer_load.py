#!/usr/bin/env python3
"""The viewer's load (benches/viewer.sh): USERS clinicians signed in through the sandbox form,
each on a connection of its own (keep-alive, its own cookies), going through the whole journey
without pause for DURATION seconds:

    GET /viewer (Find a child)  ->  POST /viewer (CSRF token, NHS number, the visit answer:
    unscheduled)  ->  303  ->  GET /viewer/result (the redirect's page)

then, against the same server and database, USERS clients of the API's audited lookup
(`Flag?patient:identifier=…&_include=Flag:author`, `IsUnscheduledAccessEvent: true`, as
health-care) for DURATION seconds. Both through this one client (asyncio, one thread, plain
HTTP/1.1), so both carry the same client overhead. A WARMUP of each comes first, not counted.

Prints p50/p99 per page and pages/s, the API lookup's p50/p99 and lookups/s, and writes them to
OUT as JSON (for benches/all.sh).

    python3 benches/viewer_load.py BASE NHS_FILE API_TOKEN OUT [USERS] [DURATION] [WARMUP]
"""
import asyncio
import json
import random
import re
import sys
import time
from urllib.parse import urlencode, urlsplit

CSRF = re.compile(rb'name="csrf" value="([0-9a-f]+)"')


class Http:
    """One keep-alive HTTP/1.1 connection with a cookie jar: what a browser tab needs here."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.cookies = {}

    async def request(self, method, path, body=b"", headers=None):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if method == "POST":
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed by the server")
        status = int(status_line.split()[1])
        length, chunked, location, close = None, False, None, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "location":
                location = value
            elif name == "connection" and value.lower() == "close":
                close = True
            elif name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if val and "max-age=0" not in value.lower():
                    self.cookies[key.strip()] = val.strip()
                else:
                    self.cookies.pop(key.strip(), None)
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length or 0)
        if close:
            self.writer.close()
            self.writer = None
        return status, location, data


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(samples, seconds):
    ms = [s * 1000 for s in samples]
    return {"count": len(ms), "per_s": round(len(ms) / seconds, 1),
            "p50_ms": round(percentile(ms, 50), 2) if ms else None,
            "p99_ms": round(percentile(ms, 99), 2) if ms else None,
            "max_ms": round(max(ms), 2) if ms else None}


async def sign_in(http, n):
    status, _, page = await http.request("GET", "/viewer/sign-in")
    assert status == 200, f"sign-in form: {status}"
    token = CSRF.search(page).group(1).decode()
    form = urlencode({"csrf": token, "name": f"Bench Nurse {n}", "ods": "RJ1",
                      "job_role": "Staff Nurse", "role": "health-care"}).encode()
    status, location, _ = await http.request("POST", "/viewer/sign-in", form)
    assert status == 303 and location.endswith("/viewer"), f"sign-in: {status} {location}"


async def journeys(http, numbers, until, record, errors):
    """Find a child, search, result: again and again until `until`."""
    rng = random.Random(id(http))
    while time.monotonic() < until:
        started = time.perf_counter()
        status, _, page = await http.request("GET", "/viewer")
        record("find", time.perf_counter() - started)
        match = CSRF.search(page)
        if status != 200 or not match:
            errors["find"] = errors.get("find", 0) + 1
            continue
        form = urlencode({"csrf": match.group(1).decode(), "nhs_number": rng.choice(numbers),
                          "visit": "unscheduled"}).encode()
        started = time.perf_counter()
        status, location, _ = await http.request("POST", "/viewer", form)
        record("search", time.perf_counter() - started)
        if status != 303 or not location or not location.endswith("/viewer/result"):
            errors["search"] = errors.get("search", 0) + 1
            continue
        started = time.perf_counter()
        status, _, page = await http.request("GET", urlsplit(location).path)
        record("result", time.perf_counter() - started)
        if status != 200 or b"Child protection information" not in page:
            errors["result"] = errors.get("result", 0) + 1


async def lookups(http, numbers, token, until, record, errors):
    rng = random.Random(id(http))
    headers = {"Authorization": f"Bearer {token}", "IsUnscheduledAccessEvent": "true",
               "Accept": "application/fhir+json"}
    while time.monotonic() < until:
        path = ("/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|"
                f"{rng.choice(numbers)}&_include=Flag:author")
        started = time.perf_counter()
        status, _, _ = await http.request("GET", path, headers=headers)
        record("api_lookup", time.perf_counter() - started)
        if status != 200:
            errors["api_lookup"] = errors.get("api_lookup", 0) + 1


async def phase(make, users, warmup, duration):
    """Runs `make(until, record, errors)` per user: a warm-up, then the measured part."""
    for counting, seconds in ((False, warmup), (True, duration)):
        samples, errors = {}, {}

        def record(name, seconds_taken, keep=counting):
            if keep:
                samples.setdefault(name, []).append(seconds_taken)

        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(make(i, until, record, errors) for i in range(users)))
        elapsed = time.monotonic() - started
    return samples, errors, elapsed


async def main():
    base, nhs_file, token, out = sys.argv[1:5]
    users = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    duration = float(sys.argv[6]) if len(sys.argv) > 6 else 10.0
    warmup = float(sys.argv[7]) if len(sys.argv) > 7 else 2.0
    url = urlsplit(base)
    numbers = [line.split()[0] for line in open(nhs_file) if line.strip()]

    tabs = [Http(url.hostname, url.port) for _ in range(users)]
    for n, http in enumerate(tabs, 1):
        await sign_in(http, n)
    cpu = time.process_time()
    viewer, viewer_errors, viewer_s = await phase(
        lambda i, until, record, errors: journeys(tabs[i], numbers, until, record, errors),
        users, warmup, duration)
    viewer_cpu = time.process_time() - cpu

    clients = [Http(url.hostname, url.port) for _ in range(users)]
    cpu = time.process_time()
    api, api_errors, api_s = await phase(
        lambda i, until, record, errors: lookups(clients[i], numbers, token, until, record, errors),
        users, warmup, duration)
    api_cpu = time.process_time() - cpu

    pages = {name: summary(viewer.get(name, []), viewer_s) for name in ("find", "search", "result")}
    every_page = summary([s for name in pages for s in viewer.get(name, [])], viewer_s)
    journeys_done = pages["result"]["count"]
    lookup = summary(api.get("api_lookup", []), api_s)
    result = {
        "users": users, "duration_s": round(viewer_s, 2), "api_duration_s": round(api_s, 2),
        "pages": pages, "all_pages": every_page,
        "pages_per_s": every_page["per_s"], "journeys_per_s": round(journeys_done / viewer_s, 1),
        "api_lookup": lookup,
        "errors": {"viewer": viewer_errors, "api": api_errors},
        "client_cpu_share": {"viewer": round(viewer_cpu / viewer_s, 2), "api": round(api_cpu / api_s, 2)},
    }
    print(f"\n{users} users, {viewer_s:.1f} s of journeys, then {api_s:.1f} s of API lookups (same server, same database)\n")
    print("| page | count | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    labels = {"find": "Find a child (GET /viewer)", "search": "search (POST /viewer, 303)",
              "result": "result (GET /viewer/result)"}
    for name, s in [*pages.items(), ("all", every_page)]:
        print(f"| {labels.get(name, 'every viewer page')} | {s['count']} | {s['per_s']} | {s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    print(f"| API audited lookup (Flag?patient:identifier, unscheduled) | {lookup['count']} | {lookup['per_s']} | {lookup['p50_ms']} | {lookup['p99_ms']} | {lookup['max_ms']} |")
    print(f"\nviewer: {result['pages_per_s']} pages/s, {result['journeys_per_s']} journeys/s; "
          f"errors: viewer {viewer_errors or 0}, API {api_errors or 0}; "
          f"this client's CPU: {result['client_cpu_share']['viewer']:.0%} of a core (viewer), "
          f"{result['client_cpu_share']['api']:.0%} (API)")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    if viewer_errors or api_errors or not journeys_done or not lookup["count"]:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
