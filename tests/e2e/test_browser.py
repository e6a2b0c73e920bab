"""The checkers' and researchers' pages in a real browser: Debian's Chromium driven by
Playwright, against `tre serve` started on a free loopback port.

Screenshots of the review page go to docs/screenshots/ on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.web.conftest import FAILING, PASSING, SMALL, World, build_world, status_of, tre_serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, Path]) -> World:
    return build_world(tmp_path_factory.mktemp("browser"), sources)


@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tre serve` in its own process on a free loopback port; its URL."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with tre_serve(world.home, log) as (url, _):
        yield url
    for token in world.tokens.values():
        assert token not in log.read_text(), "a token reached the server's log"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def signed_in(browser, server: str, token: str):
    """A new browser context (its own cookies) signed in through the sign-in page."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=server, accept_downloads=True
    )
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return context, page


def decide(page, output: str, decision: str, comment: str) -> None:
    """Cast a vote on one output through its form."""
    section = page.locator(f"#output-{output}")
    section.get_by_label(decision).check()
    section.get_by_label("Comment (required)").fill(comment)
    section.get_by_role("button", name=f"Record decision on {output}").click()
    page.wait_for_load_state()


def test_two_checkers_approve_and_the_researcher_downloads_the_release(
    browser, server: str, world: World
):
    job = world.awaiting
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    carl_context, carl = signed_in(browser, server, world.tokens["carl"])
    assert carl.get_by_role("heading", name="Review queue").is_visible()
    carl.get_by_role("link", name=str(job), exact=True).click()
    carl.wait_for_load_state()
    assert carl.get_by_role("heading", level=1).inner_text().startswith(f"Job {job}:")
    small = carl.locator(f"#output-{SMALL}")
    assert small.locator("td.fail").count() > 0
    assert status_of(world, job, FAILING) == "fail"
    assert carl.locator(f"#output-{FAILING}").get_by_label("✓ Approve").is_disabled()
    carl.screenshot(path=str(SCREENSHOTS / "review-page.png"))
    small.screenshot(path=str(SCREENSHOTS / "review-failing-cells.png"))
    previous = carl.locator("#previous")
    previous.locator("summary").first.click()
    assert previous.get_by_role("table").first.is_visible()
    previous.screenshot(path=str(SCREENSHOTS / "review-previous-releases.png"))

    decide(carl, PASSING, "✓ Approve", "Every cell has at least 10 residents.")
    assert carl.get_by_text(f"Your decision on {PASSING} is recorded.").is_visible()
    decide(carl, SMALL, "✗ Reject", "Too many cells below 10; use deprivation quintiles.")
    decide(carl, FAILING, "✗ Reject", "A maximum is one person's value.")
    assert "Not yet: every output needs 2 reviews" in carl.content()
    carl_context.close()

    chen_context, chen = signed_in(browser, server, world.tokens["chen"])
    chen.goto(f"/review/{job}")
    section = chen.locator(f"#output-{PASSING}")
    assert section.get_by_text("1 other review hidden until you vote on this output").is_visible()
    assert "Every cell has at least 10 residents." not in chen.content()
    section.screenshot(path=str(SCREENSHOTS / "review-second-checker.png"))
    decide(chen, PASSING, "✓ Approve", "Agreed: all cells pass.")
    assert "Every cell has at least 10 residents." in chen.content()  # now shown
    decide(chen, SMALL, "✗ Reject", "Agreed: too many small cells.")
    decide(chen, FAILING, "✗ Reject", "Agreed: never release a maximum.")
    chen.get_by_role("button", name=f"Release job {job}").click()
    chen.wait_for_load_state()
    assert chen.get_by_text(f"Job {job} is settled: partially released.").is_visible()
    chen_context.close()

    rita_context, rita = signed_in(browser, server, world.tokens["rita"])
    rita.goto(f"/jobs/{job}")
    assert rita.get_by_role("heading", name="Released files").is_visible()
    # Issue 27: the checkers' reasons for what was not released reach the researcher.
    comments = rita.get_by_role("heading", name="Checkers' comments")
    assert comments.is_visible()
    assert rita.get_by_text("Too many cells below 10; use deprivation quintiles.").is_visible()
    assert rita.get_by_text("Agreed: never release a maximum.").is_visible()
    with rita.expect_download() as download_info:
        rita.get_by_role("link", name=f"{PASSING}/{PASSING}.csv").click()
    download = download_info.value
    released = world.home / "releases" / f"{job:06d}" / PASSING / f"{PASSING}.csv"
    assert Path(download.path()).read_bytes() == released.read_bytes()
    rita.screenshot(path=str(SCREENSHOTS / "researcher-job.png"), full_page=True)
    rita_context.close()


def test_a_checker_cannot_open_the_review_of_their_own_job(browser, server: str, world: World):
    context, page = signed_in(browser, server, world.tokens["sam"])
    assert page.get_by_text("Your own job: another checker must review it.").is_visible()
    assert page.get_by_role("link", name=str(world.own), exact=True).count() == 0
    response = page.goto(f"/review/{world.own}")
    assert response is not None and response.status == 403
    assert page.get_by_text(
        "an output checker may not review the outputs of a job they submitted"
    ).is_visible()
    context.close()


def test_a_researcher_cannot_see_another_projects_jobs(browser, server: str, world: World):
    context, page = signed_in(browser, server, world.tokens["olga"])
    page.goto("/jobs?all=1")
    assert page.get_by_text("No jobs yet.").is_visible()
    for job in (world.awaiting, world.own, world.released):
        response = page.goto(f"/jobs/{job}")
        assert response is not None and response.status == 403
        assert page.get_by_text("of which you are not a member").is_visible()
    response = page.goto(f"/jobs/{world.released}/release.zip")
    assert response is not None and response.status == 403
    context.close()


def test_the_browser_never_asks_for_anything_outside_the_server(browser, server, world):
    context, page = signed_in(browser, server, world.tokens["carl"])
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"/review/{world.awaiting}")
    page.goto("/review")
    assert requested and all(url.startswith(server) for url in requested), requested
    context.close()
