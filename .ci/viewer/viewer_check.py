"""The clinician viewer (SPEC §10, issue #27) in a real browser: Debian's Chromium driven by
Playwright, every journey with JavaScript on and again with it off, axe-core (WCAG 2.2 AA tags)
on every page, one keyboard-only pass, and a full-page screenshot of each page.

    python viewer_check.py <base URL> <screenshot dir> [<README screenshot path>]

Prints one line per check and exits non-zero on any failure, printing axe's violations.
"""

import re
import sys
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError, sync_playwright

import suite
from suite import ACTION_TIMEOUT_MS, WCAG_TAGS, Journey, axe, check

# The sandbox's seeded child with a plan (README "Two commands") and a valid NHS number (Modulus
# 11) that the sandbox holds no plan for (its three test numbers all have one).
WITH_PLAN = "9449306753"
WITHOUT_PLAN = "9434765919"

BASE = sys.argv[1].rstrip("/")
SHOTS = Path(sys.argv[2])
README_SHOT = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
suite.shots = SHOTS


def axe_canary(browser) -> None:
    """axe-core must find what it is there to find: a page with an image without alt text and an
    unlabelled field has violations (so a silent axe that reports nothing fails the suite)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
                         '<img src="data:,"><input type="text"></main></body></html>')
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        ids = sorted(v["id"] for v in results.response["violations"])
        check("image-alt" in ids and "label" in ids, f"axe-core finds the canary page's violations ({', '.join(ids)})")
    finally:
        context.close()


def sign_in(j: Journey, name: str, role: str | None = None, shoot: bool = False) -> None:
    page = j.page
    page.goto(f"{BASE}/viewer")
    check(page.url.endswith("/viewer/sign-in"), f"{j.label}: /viewer without a session redirects to sign-in")
    check(j.h1() == "Sign in", f"{j.label}: the sign-in page")
    if shoot:
        j.page_done("sign-in")
        # Nothing entered: the error summary, the fields marked.
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        summary = page.locator(".nhsuk-error-summary")
        check(summary.count() == 1 and "Enter your name" in summary.inner_text(),
              f"{j.label}: an empty sign-in shows the error summary")
        j.page_done("sign-in-errors")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Organisation ODS code").fill("RJ1")
    page.get_by_label("Job role").fill("Staff Nurse")
    if role:
        page.get_by_label("Sandbox role").select_option(label=role)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def find(j: Journey, nhs_number: str, visit: str | None) -> None:
    page = j.page
    if not page.url.endswith("/viewer"):
        page.goto(f"{BASE}/viewer")
    page.get_by_label("NHS number").fill(nhs_number)
    if visit == "unscheduled":
        page.get_by_label("An emergency or unscheduled visit").check()
    elif visit == "scheduled":
        page.get_by_label("A planned or routine appointment").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()


def journeys(browser, js: bool) -> None:
    label = "js-on" if js else "js-off"
    name = "Jane Smith" if js else "Sam Patel"
    print(f"== journeys with JavaScript {'on' if js else 'off'}")
    j = Journey(browser, label, js)
    page = j.page
    try:
        sign_in(j, name, shoot=True)
        check(page.url.endswith("/viewer") and j.h1() == "Find a child", f"{label}: signed in, Find a child")
        check(page.get_by_label("An emergency or unscheduled visit").is_checked() is False
              and page.get_by_label("A planned or routine appointment").is_checked() is False,
              f"{label}: the visit question has no default")
        j.page_done("find")

        # An invalid NHS number and no answer: the error summary, nothing recorded.
        find(j, "1234567890", None)
        summary = page.locator(".nhsuk-error-summary")
        text = summary.inner_text() if summary.count() else ""
        check("There is a problem" in text and "Enter a valid 10 digit NHS number" in text
              and "Select why the patient is being seen today" in text,
              f"{label}: invalid NHS number and no answer: the error summary")
        check(page.locator(".nhsuk-error-summary a[href='#nhs-number']").count() == 1
              and page.locator(".nhsuk-error-summary a[href='#visit-unscheduled']").count() == 1,
              f"{label}: the summary links to the fields")
        check(j.h1() == "Find a child", f"{label}: still on Find a child")
        j.page_done("find-errors")

        # An unscheduled visit: the plan card, the banner, Previous views with this view.
        find(j, WITH_PLAN, "unscheduled")
        check(page.url.endswith("/viewer/result"), f"{label}: the result by redirect, no NHS number in the URL")
        check(WITH_PLAN not in page.url, f"{label}: no NHS number in the URL")
        check(j.h1() == "Child protection information", f"{label}: the result page")
        cards = page.locator(".nhsuk-card")
        check(cards.count() >= 1, f"{label}: a plan card ({cards.count()})")
        card = cards.first.inner_text() if cards.count() else ""
        check(any(kind in card for kind in ("Child protection plan", "Looked after child", "Unborn child protection plan"))
              and "Office hours number" in card and "Emergency duty number" in card,
              f"{label}: the card shows the plan type and the LA's numbers")
        check(page.locator(".nhsuk-card a[href^='tel:']").count() >= 1, f"{label}: the LA's numbers are tel: links")
        check(re.search(r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|December) \d{4}\b", card) is not None,
              f"{label}: dates in UK format")
        banner = page.locator(".nhsuk-notification-banner")
        check(banner.count() == 1 and "local authority has been told" in banner.inner_text(),
              f"{label}: the 'local authority has been told' banner")
        check(page.locator(".nhsuk-warning-callout").count() == 1, f"{label}: the 'phone the LA' warning")
        views = page.locator("table:has(caption:text('Previous views')) tbody tr")
        rows = [views.nth(i).inner_text() for i in range(views.count())]
        check(any(name in row and "Staff Nurse" in row for row in rows),
              f"{label}: Previous views holds this view ({len(rows)} rows)")
        j.page_done("result-unscheduled")
        if js and README_SHOT is not None:
            page.screenshot(path=str(README_SHOT), full_page=True, timeout=ACTION_TIMEOUT_MS)
            print(f"  README screenshot: {README_SHOT}")

        # A planned visit: the same plan, no banner.
        page.get_by_role("link", name="Find another child").click()
        page.wait_for_load_state()
        find(j, WITH_PLAN, "scheduled")
        check(j.h1() == "Child protection information", f"{label}: planned visit: the result page")
        check(page.locator(".nhsuk-notification-banner").count() == 0, f"{label}: planned visit: no banner")
        j.page_done("result-planned")

        # A child without a plan.
        find(j, WITHOUT_PLAN, "unscheduled")
        check(j.h1() == "No child protection information found", f"{label}: a child without a plan")
        check(page.locator(".nhsuk-card").count() == 0, f"{label}: no plan card")
        j.page_done("no-plan")

        # Sign out: the result page is then unreachable.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_load_state()
        check(j.h1() == "You have signed out", f"{label}: signed out")
        j.page_done("signed-out")
        page.goto(f"{BASE}/viewer/result")
        check(page.url.endswith("/viewer/sign-in") and j.h1() == "Sign in",
              f"{label}: after sign-out the result page is unreachable (sign-in instead)")
        check("Child protection information" not in page.content(), f"{label}: nothing of the child shown")
    finally:
        j.close()

    # A role other than health care: the 403 page.
    j = Journey(browser, f"{label}-social-care", js)
    try:
        responses = []
        j.page.on("response", lambda r: responses.append(r) if r.request.is_navigation_request() else None)
        sign_in(j, f"{name} (LA)", role="Social care")
        status = responses[-1].status if responses else 0
        check(status == 403, f"{label}: a social-care sign-in answers 403 ({status})")
        check(j.h1() == "You cannot use this service", f"{label}: the 403 page")
        j.page_done("forbidden")
    finally:
        j.close()


FOCUS_VISIBLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {ok: false, what: 'nothing focused'};
  const transparent = (c) => c === 'transparent' || /rgba\\([^)]*,\\s*0\\)$/.test(c);
  const shows = (s) => (s.boxShadow && s.boxShadow !== 'none')
    || (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 && !transparent(s.outlineColor));
  let ok = shows(getComputedStyle(el));
  if (!ok && (el.type === 'radio' || el.type === 'checkbox') && el.id) {
    // NHS.UK radios draw their focus ring on the label's ::before (the input is transparent).
    const label = document.querySelector(`label[for="${el.id}"]`);
    ok = !!label && shows(getComputedStyle(label, '::before'));
  }
  const text = (el.innerText || el.value || '').trim().split('\\n')[0].slice(0, 40);
  return {ok, what: `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${text}"`};
}"""


def keyboard_pass(browser) -> None:
    """Sign-in → Find a child → result → sign out with the keyboard alone: Tab and Shift+Tab to
    move, typing into fields, Space to choose a radio, Enter to submit; every focused element
    must show its focus."""
    print("== keyboard only")
    j = Journey(browser, "keyboard", True)
    page = j.page
    seen: list[str] = []

    def tab_to(selector: str, key: str = "Tab", limit: int = 15, text: str = "") -> None:
        for _ in range(limit):
            page.keyboard.press(key)
            focus = page.evaluate(FOCUS_VISIBLE)
            seen.append(focus["what"])
            check(focus["ok"], f"keyboard: focus visible on {focus['what']}")
            if page.evaluate(
                "([s, t]) => document.activeElement.matches(s) && document.activeElement.innerText.includes(t)",
                [selector, text],
            ):
                return
        raise AssertionError(f"keyboard: {selector} not reached with {key}")

    try:
        page.goto(f"{BASE}/viewer/sign-in")
        tab_to(".nhsuk-skip-link")
        tab_to("#name")
        page.keyboard.type("Kim Lee")
        tab_to("#ods")
        page.keyboard.type("RJ1")
        tab_to("#job-role")
        page.keyboard.type("Paramedic")
        tab_to("button[type=submit]", text="Sign in")
        tab_to("#role", key="Shift+Tab", limit=2)
        tab_to("button[type=submit]", text="Sign in", limit=2)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        check(j.h1() == "Find a child", "keyboard: signed in with Enter")

        tab_to("#nhs-number")
        page.keyboard.type(WITH_PLAN)
        tab_to("#visit-unscheduled")
        page.keyboard.press("Space")
        check(page.is_checked("#visit-unscheduled"), "keyboard: Space chooses the radio")
        tab_to("button[type=submit]", text="Search")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        check(j.h1() == "Child protection information", "keyboard: the result with Enter")
        check(page.locator(".nhsuk-notification-banner").count() == 1, "keyboard: the banner")

        # Back to the top of the page, then to Sign out.
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        tab_to("button[type=submit]", text="Sign out")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        check(j.h1() == "You have signed out", "keyboard: signed out with Enter")
    finally:
        j.close()


def main() -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = suite.launch(p)
        print(f"viewer: Chromium {browser.version}, axe-core {suite.axe_version()}")
        try:
            axe_canary(browser)
            for js in (True, False):
                try:
                    journeys(browser, js)
                except (PlaywrightError, AssertionError) as e:
                    check(False, f"journeys (JavaScript {'on' if js else 'off'}): {e}")
            try:
                keyboard_pass(browser)
            except (PlaywrightError, AssertionError) as e:
                check(False, f"keyboard pass: {e}")
        finally:
            browser.close()
    return suite.report("viewer browser suite", time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
