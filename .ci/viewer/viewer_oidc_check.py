"""Sign-in to the clinician viewer (SPEC §10, issue #27) through a real OpenID Connect provider,
in Debian's Chromium driven by Playwright (started by .ci/viewer_oidc.sh): the authorization
code flow with PKCE (S256), state and nonce, the provider's own login and consent pages, then a
lookup. Once with the client_secret_basic client (JavaScript on) and once with the
private_key_jwt client (JavaScript off); a social worker is refused with the 403 page.

    python viewer_oidc_check.py <issuer> <provider request log> <screenshot dir> \
        secret=<cpis base URL> key=<cpis base URL>

The browser's own navigations show what it was sent to the provider with and brought back; the
provider's request log shows what cpis sent its token endpoint and what the ID token carried.
Prints one line per check; exits non-zero on any failure.
"""

import base64
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Error as PlaywrightError, sync_playwright

import suite
from suite import Journey, check

WITH_PLAN = "9449306753"
ISSUER = sys.argv[1].rstrip("/")
REQUEST_LOG = Path(sys.argv[2])
suite.shots = Path(sys.argv[3])
SERVERS = dict(arg.split("=", 1) for arg in sys.argv[4:])
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")

# What each cpis is: its client at the provider and how that client proves itself.
CLIENTS = {
    "secret": {"client_id": "cpis-viewer", "scope": "openid profile", "js": True},
    "key": {"client_id": "cpis-viewer-cis2", "scope": "openid profile nationalrbacaccess", "js": False},
}


def provider_log() -> list[dict]:
    if not REQUEST_LOG.exists():
        return []
    return [json.loads(line) for line in REQUEST_LOG.read_text().splitlines() if line.strip()]


def navigations(j: Journey) -> list[str]:
    """Every URL the page is navigated to (redirects included), in order."""
    seen: list[str] = []
    j.page.on("request", lambda r: seen.append(r.url) if r.is_navigation_request() else None)
    return seen


def at_provider(url: str, path: str) -> bool:
    return url.startswith(f"{ISSUER}{path}")


def provider_sign_in(j: Journey, login: str, label: str) -> None:
    """The provider's login page, then its consent page, as a person uses them."""
    page = j.page
    check(at_provider(page.url, "/interaction/"), f"{label}: the browser is at the provider's login page")
    j.page_done("provider-login", axe_it=False)
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_load_state()
    check(at_provider(page.url, "/interaction/") and "Authorize" in page.content(),
          f"{label}: the provider's consent page")
    j.page_done("provider-consent", axe_it=False)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def authorization_request(label: str, seen: list[str], base: str, client: dict) -> dict:
    """Checks the authorization request the browser was sent to; returns its parameters."""
    requests = [u for u in seen if at_provider(u, "/auth?")]
    check(len(requests) == 1, f"{label}: cpis sent the browser to the authorization endpoint once ({len(requests)})")
    if not requests:
        return {}
    params = {k: v[0] for k, v in parse_qs(urlsplit(requests[0]).query).items()}
    check(params.get("response_type") == "code", f"{label}: response_type=code (the authorization code flow)")
    check(params.get("client_id") == client["client_id"], f"{label}: client_id {params.get('client_id')}")
    check(params.get("redirect_uri") == f"{base}/viewer/callback", f"{label}: redirect_uri {params.get('redirect_uri')}")
    check(params.get("scope") == client["scope"], f"{label}: scope {params.get('scope')!r}")
    check(params.get("code_challenge_method") == "S256", f"{label}: PKCE with S256")
    challenge = params.get("code_challenge", "")
    check(len(challenge) == 43 and B64URL.match(challenge) is not None,
          f"{label}: a code_challenge (SHA-256, base64url: 43 characters)")
    for name in ("state", "nonce"):
        value = params.get(name, "")
        check(len(value) >= 22 and B64URL.match(value) is not None, f"{label}: a random {name} ({len(value)} characters)")
    check(WITH_PLAN not in requests[0], f"{label}: no NHS number in the authorization request")
    return params


def token_request(label: str, asked: dict, client: dict, auth: str) -> None:
    """The provider's log of the token request cpis made for this sign-in: the PKCE verifier
    that matches the challenge, the client's authentication, and the ID token's nonce."""
    challenge = asked.get("code_challenge")
    logged = [e for e in provider_log() if e["endpoint"] == "authorization"
              and e["params"].get("state") == asked.get("state")]
    check(len(logged) == 1 and logged[0]["params"].get("code_challenge") == challenge
          and logged[0]["params"].get("nonce") == asked.get("nonce"),
          f"{label}: the provider received that state, nonce and code_challenge")

    def verifies(entry: dict) -> bool:
        verifier = entry.get("code_verifier") or ""
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return bool(verifier) and digest == challenge

    tokens = [e for e in provider_log() if e["endpoint"] == "token" and verifies(e)]
    check(len(tokens) == 1, f"{label}: one token request whose code_verifier hashes (S256) to the challenge")
    if not tokens:
        return
    token = tokens[0]
    check(token["status"] == 200 and token["grant_type"] == "authorization_code"
          and token["client_id"] == client["client_id"],
          f"{label}: the provider answered it (authorization_code, {token['client_id']}, {token['status']})")
    if auth == "client_secret_basic":
        check(token["authorization_scheme"] == "Basic" and token["client_assertion_type"] is None,
              f"{label}: the client authenticated with client_secret_basic (an Authorization: Basic header)")
    else:
        assertion = token["client_assertion"] or {}
        check(token["authorization_scheme"] is None
              and token["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
              and assertion.get("iss") == client["client_id"] == assertion.get("sub")
              and assertion.get("aud") == f"{ISSUER}/token" and assertion.get("jti"),
              f"{label}: the client authenticated with private_key_jwt (a signed client assertion)")
    id_token = token["id_token"] or {}
    check(id_token.get("nonce") == asked.get("nonce"), f"{label}: the ID token carries the request's nonce")


def signs_in(browser, name: str) -> None:
    client = CLIENTS[name]
    base = SERVERS[name].rstrip("/")
    auth = "client_secret_basic" if name == "secret" else "private_key_jwt"
    js = client["js"]
    label = f"oidc {auth} (JavaScript {'on' if js else 'off'})"
    print(f"== {label}")
    j = Journey(browser, f"oidc-{name}", js)
    seen = navigations(j)
    page = j.page
    try:
        page.goto(f"{base}/viewer")
        asked = authorization_request(label, seen, base, client)
        provider_sign_in(j, "jane.nurse", label)
        callbacks = [u for u in seen if u.startswith(f"{base}/viewer/callback?")]
        check(len(callbacks) == 1, f"{label}: the provider sent the browser back to the callback")
        back = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[0]).query).items()} if callbacks else {}
        check(back.get("state") == asked.get("state") and bool(back.get("code")),
              f"{label}: the callback brought the same state and a code")
        check(page.url == f"{base}/viewer" and j.h1() == "Find a child", f"{label}: signed in, Find a child")
        header = page.locator("header").inner_text()
        check("Jane Nurse" in header and "RJ1" in header,
              f"{label}: the ID token's name and organisation are the caller's")
        j.page_done("find")
        token_request(label, asked, client, auth)

        # A lookup, recorded as this clinician's.
        page.get_by_label("NHS number").fill(WITH_PLAN)
        page.get_by_label("An emergency or unscheduled visit").check()
        page.get_by_role("button", name="Search").click()
        page.wait_for_load_state()
        check(page.url == f"{base}/viewer/result" and j.h1() == "Child protection information",
              f"{label}: the result page")
        views = page.locator("table:has(caption:text('Previous views')) tbody tr")
        rows = [views.nth(i).inner_text() for i in range(views.count())]
        check(any("Jane Nurse" in row and "Staff Nurse" in row and "RJ1" in row for row in rows),
              f"{label}: Previous views holds this view, with the ID token's job role")
        j.page_done("result")

        # The provider's answer replayed: its state is spent.
        if callbacks:
            replay = page.goto(callbacks[0])
            check(replay is not None and replay.status == 400, f"{label}: the callback replayed is refused (400)")
            j.page_done("replayed-callback")
            page.goto(f"{base}/viewer")
            check(j.h1() == "Find a child", f"{label}: the session it made is still the browser's")

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_load_state()
        check(j.h1() == "You have signed out", f"{label}: signed out")
    finally:
        j.close()


def refuses_social_care(browser) -> None:
    label = "oidc: a social worker"
    print(f"== {label}")
    base = SERVERS["secret"].rstrip("/")
    j = Journey(browser, "oidc-social-care", True)
    try:
        statuses: list[int] = []
        j.page.on("response", lambda r: statuses.append(r.status)
                  if r.request.is_navigation_request() and r.url.startswith(f"{base}/viewer") else None)
        j.page.goto(f"{base}/viewer")
        provider_sign_in(j, "sam.social", label)
        check(statuses[-1:] == [403] and j.h1() == "You cannot use this service",
              f"{label} (social care by the role map) gets the 403 page ({statuses[-1:]})")
        j.page_done("forbidden")
        again = j.context.request.get(f"{base}/viewer", max_redirects=0)
        check(again.status == 303 and again.headers.get("location") == "/viewer/sign-in",
              f"{label}: has no session (sent to sign in again: {again.status})")
    finally:
        j.close()


def main() -> int:
    started = time.monotonic()
    with sync_playwright() as p:
        browser = suite.launch(p)
        print(f"viewer-oidc: Chromium {browser.version}, provider {ISSUER}")
        try:
            for name in ("secret", "key"):
                try:
                    signs_in(browser, name)
                except (PlaywrightError, AssertionError) as e:
                    check(False, f"sign-in through the provider ({name}): {e}")
            try:
                refuses_social_care(browser)
            except (PlaywrightError, AssertionError) as e:
                check(False, f"a social worker through the provider: {e}")
        finally:
            browser.close()
    return suite.report("viewer OpenID Connect browser suite", time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
