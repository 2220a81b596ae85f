"""What the viewer's browser suites share (viewer_check.py, viewer_oidc_check.py): Debian's
Chromium for Playwright, the suite's checks and their tally, axe-core with the WCAG 2.2 AA
tags, and a browser context per journey that screenshots each page it reaches."""

import re
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ACTION_TIMEOUT_MS = 10_000
# Anything not on loopback (a page's web font, say) is refused: the suite runs offline.
NOT_LOOPBACK = re.compile(r"^(?!https?://127\.0\.0\.1[:/]|data:|about:)")

axe = Axe()
failures: list[str] = []
passed = 0
axe_summary: dict[str, int] = {}
shots = Path(".")


def check(ok: bool, what: str) -> None:
    global passed
    if ok:
        passed += 1
        print(f"  ok   {what}")
    else:
        failures.append(what)
        print(f"  FAIL {what}")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)


class Journey:
    """One browser context: JavaScript on or off, a name for its screenshots."""

    def __init__(self, browser, label: str, js: bool):
        self.label = label
        self.js = js
        self.context = browser.new_context(
            java_script_enabled=js,
            viewport={"width": 1024, "height": 768},
            locale="en-GB",
            timezone_id="Europe/London",
        )
        self.context.set_default_timeout(ACTION_TIMEOUT_MS)
        self.context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
        self.context.route(NOT_LOOPBACK, lambda route: route.abort())
        self.page: Page = self.context.new_page()
        self.shot = 0

    def close(self) -> None:
        self.context.close()

    def page_done(self, name: str, axe_it: bool = True) -> None:
        """A page reached: its screenshot, and axe-core on it (JavaScript on only: axe runs as
        a script in the page; with JavaScript off the same HTML is checked by the other pass).
        `axe_it` is false for pages that are not the viewer's (an identity provider's)."""
        self.shot += 1
        path = shots / f"{self.label}-{self.shot:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True, timeout=ACTION_TIMEOUT_MS)
        if self.js and axe_it:
            run_axe(self.page, f"{self.label} {name}")

    def h1(self) -> str:
        return self.page.locator("h1").first.inner_text().strip()


def run_axe(page: Page, name: str) -> None:
    results = axe.run(
        page,
        options={
            "runOnly": {"type": "tag", "values": WCAG_TAGS},
            "resultTypes": ["violations"],
        },
    )
    count = results.violations_count
    axe_summary[name] = count
    if count:
        print(results.generate_report())
        for violation in results.response["violations"]:
            for node in violation["nodes"]:
                print(f"    {violation['id']}: {node['target']} {node.get('failureSummary', '')}")
    check(count == 0, f"axe-core ({', '.join(WCAG_TAGS)}): {count} violations on {name}")


def axe_version() -> str:
    m = re.search(r"axe v([0-9.]+)", axe.axe_script)
    return m.group(1) if m else "?"


def report(name: str, seconds: float) -> int:
    """Prints the tally; the exit status."""
    if axe_summary:
        print("axe-core violations per page:")
        for page, count in axe_summary.items():
            print(f"  {count}  {page}")
    print(f"screenshots: {shots}")
    print(f"{name}: {seconds:.1f} s")
    print(f"{passed} passed, {len(failures)} failed")
    for failure in failures:
        print(f"  failed: {failure}")
    return 1 if failures else 0
