"""The web pages in-process: signing in, CSRF, the review page, the researcher's and
the admin's pages, escaping and accessibility. (tests/e2e/test_browser.py drives the
same pages in Chromium.)"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from tests.tre.factories import refused_at_submission, rejected_at_review
from tests.web.conftest import (
    CSRF,
    FAILING,
    PASSING,
    SMALL,
    SPEC,
    TestClient,
    World,
    failing_reason,
    sign_in,
    status_of,
)
from tre.service import jobs, tokens
from tre.service.session import Session
from tre.store import repo
from tre.web import create_app
from tre.web.auth import SESSION_COOKIE

pytestmark = pytest.mark.slow


def reviews_of(world: World, job: int) -> list:
    s = Session.open(world.home, "ada")
    try:
        return repo.list_reviews(s.conn, job)
    finally:
        s.close()


def vote(browser: TestClient, csrf: str, job: int, output: str, decision: str, comment: str):
    return browser.post(
        f"/review/{job}/vote",
        data={"csrf": csrf, "output": output, "decision": decision, "comment": comment},
    )


# -- signing in ---------------------------------------------------------------------------


def test_sign_in_sets_a_signed_http_only_strict_session_cookie(app, world: World):
    browser = TestClient(app, follow_redirects=False)
    form = browser.get("/login")
    login_cookie = form.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    nonce = CSRF.search(form.text).group(1)
    signed = browser.post(
        "/login", data={"token": world.tokens["carl"], "csrf": nonce, "next": "/review"}
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/review"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if SESSION_COOKIE in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert world.tokens["carl"] not in cookie  # the cookie names the token's id only
    assert browser.get("/review").status_code == 200


def test_a_bad_token_says_why_and_is_never_echoed(app):
    browser = TestClient(app, follow_redirects=False)
    nonce = CSRF.search(browser.get("/login").text).group(1)
    bad = "tre_0123456789ab_" + "Z" * 43
    page = browser.post("/login", data={"token": bad, "csrf": nonce, "next": "/"})
    assert page.status_code == 401
    assert "this TRE does not know that API token" in page.text
    assert bad not in page.text
    assert SESSION_COOKIE not in page.headers.get("set-cookie", "")


def test_the_sign_in_form_needs_its_own_nonce(app, world: World):
    browser = TestClient(app, follow_redirects=False)
    forged = browser.post("/login", data={"token": world.tokens["carl"], "csrf": "x", "next": "/"})
    assert forged.status_code == 403
    assert "the sign-in form is out of date" in forged.text


def test_pages_send_strangers_to_sign_in_and_back_but_never_off_site(app, world: World):
    browser = TestClient(app, follow_redirects=False)
    away = browser.get(f"/review/{world.awaiting}")
    assert away.status_code == 303
    assert away.headers["location"] == f"/login?next=%2Freview%2F{world.awaiting}"
    form = browser.get(away.headers["location"])
    assert f'name="next" value="/review/{world.awaiting}"' in form.text
    for target, lands in (
        (f"/review/{world.awaiting}", f"/review/{world.awaiting}"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        nonce = CSRF.search(browser.get("/login").text).group(1)
        signed = browser.post(
            "/login", data={"token": world.tokens["carl"], "csrf": nonce, "next": target}
        )
        assert signed.headers["location"] == lands


def test_a_forged_cookie_or_a_revoked_token_ends_the_session(app, world: World):
    browser, _ = sign_in(app, world.tokens["rita"])
    cookie = browser.cookies[SESSION_COOKIE]
    body, _, signature = cookie.rpartition(".")
    forged = TestClient(app, follow_redirects=False)
    parts = body.split(".")
    parts[1] = world.tokens["ada"].split("_")[1]  # someone else's token id, same signature
    forged.cookies.set(SESSION_COOKIE, ".".join(parts) + "." + signature)
    assert forged.get("/admin").status_code == 303
    s = Session.open(world.home, "ada")
    tokens.revoke_token(s, world.tokens["rita"].split("_")[1])
    s.close()
    assert browser.get("/jobs").status_code == 303


# -- CSRF ----------------------------------------------------------------------------------


def test_form_posts_without_the_csrf_token_are_refused(app, world: World):
    browser, csrf = sign_in(app, world.tokens["carl"])
    for sent in ("", "not-the-token"):
        refused = vote(browser, sent, world.awaiting, FAILING, "reject", "small cells")
        assert refused.status_code == 403
        assert "security token is missing or out of date" in refused.text
    assert reviews_of(world, world.awaiting) == []
    # Another person's CSRF token does not fit this session either.
    _, theirs = sign_in(app, world.tokens["chen"])
    assert vote(browser, theirs, world.awaiting, FAILING, "reject", "x").status_code == 403
    assert browser.post("/logout", data={"csrf": ""}).status_code == 403
    assert browser.post("/logout", data={"csrf": csrf}).status_code == 303


# -- the review page ----------------------------------------------------------------------


def test_the_review_page_marks_failing_cells_with_their_reasons(app, world: World):
    browser, _ = sign_in(app, world.tokens["carl"])
    page = browser.get(f"/review/{world.awaiting}").text
    assert "Residents with COPD by local authority and deprivation decile." in page
    assert "Two checkers must agree" in page
    assert '<th scope="row">Halton</th>' in page
    assert '<th scope="col">local_authority \\ deprivation_decile</th>' in page
    failing = re.findall(r'<td class="num fail[^"]*">([^<]*)<span class="mark"', page)
    assert failing, "failing cells carry a mark"
    assert '<span class="hidden">(fails a rule)</span>' in page
    assert str(escape(failing_reason(world, world.awaiting, SMALL))) in page
    # An output that fails offers no approval; one that passes does.
    assert status_of(world, world.awaiting, FAILING) == "fail"
    section = page.split(f'id="output-{FAILING}"')[1]
    assert 'value="approve" required disabled' in section and "cannot be approved" in section
    assert 'value="approve" required>' in page.split(f'id="output-{PASSING}"')[1]
    # The project's earlier release is there to compare with, with its reviewers.
    previous = page.split('id="previous"')[1]
    assert f"Job {world.released}:" in previous and f"{PASSING}: carl, chen" in previous


def test_the_other_checkers_vote_stays_hidden_until_one_votes(app, world: World):
    carl, carl_csrf = sign_in(app, world.tokens["carl"])
    done = vote(carl, carl_csrf, world.awaiting, PASSING, "approve", "carl: every cell >= 10")
    assert done.status_code == 303
    assert carl.get(done.headers["location"]).text.count("is recorded") == 1
    chen, chen_csrf = sign_in(app, world.tokens["chen"])
    before = chen.get(f"/review/{world.awaiting}").text
    assert "1 other review hidden until you vote on this output" in before
    assert "carl: every cell" not in before
    vote(chen, chen_csrf, world.awaiting, PASSING, "approve", "chen: agreed")
    after = chen.get(f"/review/{world.awaiting}").text
    assert "carl: every cell &gt;= 10" in after and "chen: agreed" in after


def test_a_vote_without_a_comment_is_refused_on_the_page(app, world: World):
    browser, csrf = sign_in(app, world.tokens["carl"])
    page = vote(browser, csrf, world.awaiting, FAILING, "reject", "   ")
    assert page.status_code == 400
    assert "every review needs a comment saying why" in page.text
    approve = vote(browser, csrf, world.awaiting, FAILING, "approve", "looks fine")
    assert approve.status_code == 403
    assert "fail the disclosure rules" in approve.text and "cannot be approved" in approve.text
    assert reviews_of(world, world.awaiting) == []


def test_release_from_the_page_then_the_researcher_downloads(app, world: World):
    for checker in ("carl", "chen"):
        browser, csrf = sign_in(app, world.tokens[checker])
        assert (
            "Not yet: every output needs 2 reviews" in browser.get(f"/review/{world.awaiting}").text
            or checker == "chen"
        )
        vote(browser, csrf, world.awaiting, PASSING, "approve", "safe")
        vote(browser, csrf, world.awaiting, SMALL, "reject", "small cells")
        vote(browser, csrf, world.awaiting, FAILING, "reject", "a maximum")
    released = browser.post(f"/review/{world.awaiting}/release", data={"csrf": csrf})
    assert released.status_code == 303
    assert "is settled: partially released" in browser.get(released.headers["location"]).text

    rita, _ = sign_in(app, world.tokens["rita"])
    page = rita.get(f"/jobs/{world.awaiting}").text
    link = f"/jobs/{world.awaiting}/released/{PASSING}/{PASSING}.csv"
    assert link in page and "approved" in page and "rejected" in page
    download = rita.get(link)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{PASSING}.csv"'
    folder = world.home / "releases" / f"{world.awaiting:06d}" / PASSING
    assert download.content == (folder / f"{PASSING}.csv").read_bytes()
    assert rita.get(f"/jobs/{world.awaiting}/released/{FAILING}/{FAILING}.csv").status_code == 404


def test_a_checker_cannot_open_the_review_of_their_own_job(app, world: World):
    sam, _ = sign_in(app, world.tokens["sam"])
    queue = sam.get("/review").text
    assert "Your own job: another checker must review it." in queue
    assert f'href="/review/{world.own}"' not in queue
    page = sam.get(f"/review/{world.own}")
    assert page.status_code == 403
    assert "an output checker may not review the outputs of a job they submitted" in page.text


def test_strings_from_researchers_and_reports_are_escaped(app, world: World):
    hostile = '<script>alert("x")</script>'
    report = world.home / "jobs" / f"{world.awaiting:06d}" / "report" / "report.json"
    data = json.loads(report.read_text())
    table = next(o for o in data["outputs"] if o["name"] == SMALL)
    table["cells"][0]["keys"]["local_authority"] = hostile
    table["cells"][0]["reason"] = f"reason {hostile}"
    # What a newer disclosure engine may add: suppression and rounding, unknown keys.
    table["cells"][1] |= {"suppressed": True, "suppression": "secondary", "published": None}
    table["cells"][2] |= {"rounded": True, "rounded_value": 5, "rounding_reason": "base 5"}
    table["cells"][3].pop("value")
    table["cells"][4]["new_field_from_the_future"] = {"x": 1}
    report.write_text(json.dumps(data))
    browser, _ = sign_in(app, world.tokens["carl"])
    page = browser.get(f"/review/{world.awaiting}")
    assert page.status_code == 200
    assert hostile not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "suppressed (secondary)" in page.text and "base 5" in page.text
    assert '<span class="hidden">(suppressed)</span>' in page.text
    assert '<span class="hidden">(rounded)</span>' in page.text


def test_job_titles_from_researchers_are_escaped(app, world: World):
    from jobs.spec import parse_spec

    s = Session.open(world.home, "rita")
    job = jobs.submit_job(s, parse_spec({**SPEC, "title": "<img src=x onerror=alert(1)>"}))
    s.close()
    rita, _ = sign_in(app, world.tokens["rita"])
    for path in ("/jobs", f"/jobs/{job.id}"):
        text = rita.get(path).text
        assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


# -- the researcher's and the admin's pages -----------------------------------------------


def test_the_researchers_job_page_shows_the_summary_not_the_evidence(app, world: World):
    rita, _ = sign_in(app, world.tokens["rita"])
    listing = rita.get("/jobs").text
    assert f'href="/jobs/{world.awaiting}"' in listing and "awaiting review" in listing
    assert f'href="/jobs/{world.own}"' not in listing  # sam's: only with "every job"
    assert f'href="/jobs/{world.own}"' in rita.get("/jobs?all=1").text
    page = rita.get(f"/jobs/{world.awaiting}").text
    s = Session.open(world.home, "ada")
    request = repo.find_output_request(s.conn, world.awaiting)
    s.close()
    assert request is not None
    for output in request.outputs:
        assert str(escape(output.summary)) in page
    # tre's status lines, not the job's own log (held for the checkers: code can print).
    assert f"== job {world.awaiting}: awaiting_review ==" in page
    assert "== job.log ==" not in page and "held for the output checkers" in page
    for output in (SMALL, FAILING):
        csv = world.home / "jobs" / f"{world.awaiting:06d}" / "outputs" / output / f"{output}.csv"
        assert not [line for line in csv.read_text().splitlines()[1:] if line in page]
    # Per-cell reasons are the checkers' evidence.
    assert str(escape(failing_reason(world, world.awaiting, SMALL))) not in page
    olga, _ = sign_in(app, world.tokens["olga"])
    assert olga.get(f"/jobs/{world.awaiting}").status_code == 403
    assert "No jobs yet." in olga.get("/jobs?all=1").text


def test_the_admin_pages_and_a_broken_audit_log(app, world: World):
    ada, _ = sign_in(app, world.tokens["ada"])
    page = ada.get("/admin").text
    for expected in ("lcr-health-fire", "bob", "residents", "quasi identifier", "researcher"):
        assert expected in page
    assert "✓ Intact:" in ada.get("/admin/audit").text
    anchor: Path = world.home / "audit.head"
    anchor.write_text("3 " + "0" * 64 + "\n")
    broken = ada.get("/admin/audit").text
    assert "✗ NOT intact:" in broken and "does not match the hash in audit.head" in broken
    assert ada.get("/admin/audit?object=person:rita").text.count("person:rita") >= 2


class _Structure(HTMLParser):
    """Headings, inputs, labels and table headers of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.h1 = 0
        self.lang = ""
        self.inputs: list[str] = []
        self.labelled: set[str] = set()
        self.wrapped = 0
        self.in_label = 0
        self.unscoped_th = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self.in_label += 1
            if "for" in a:
                self.labelled.add(a["for"])
        elif tag in ("input", "textarea") and a.get("type") != "hidden":
            if self.in_label:
                self.wrapped += 1
            else:
                self.inputs.append(a.get("id", "?"))
        elif tag == "th" and "scope" not in a:
            self.unscoped_th += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("carl", "/review"),
        ("carl", "/review/{awaiting}"),
        ("carl", "/review/{released}"),
        ("rita", "/jobs"),
        ("rita", "/jobs/{released}"),
        ("ada", "/admin"),
        ("ada", "/admin/audit"),
        (None, "/login"),
    ],
)
def test_pages_are_labelled_and_structured(app, world: World, who, path):
    browser = sign_in(app, world.tokens[who])[0] if who else TestClient(app)
    page = browser.get(path.format(awaiting=world.awaiting, released=world.released))
    assert page.status_code == 200
    found = _Structure()
    found.feed(page.text)
    assert found.lang == "en" and found.h1 == 1
    assert not [i for i in found.inputs if i not in found.labelled], "every field has a label"
    assert found.unscoped_th == 0, "every table header has a scope"


def test_a_refused_job_and_a_job_with_rejected_outputs_read_differently(session_as):
    """Issue 27: one word per meaning, on the researcher's pages; no job needs to run."""
    olga, rita = session_as("olga"), session_as("rita")
    refused = refused_at_submission(olga)
    rejected = rejected_at_review(rita, session_as("carl"), session_as("chen"))
    ada = session_as("ada")
    app = create_app(ada.home.root)
    olgas, _ = sign_in(app, tokens.issue_token(ada, "olga")[1])
    page = olgas.get(f"/jobs/{refused.id}")
    assert page.status_code == 200, page.text
    assert '<span class="badge state">refused</span>' in page.text
    assert "olga is not a member of project" in page.text
    assert "Disclosure summary" not in page.text
    ritas, _ = sign_in(app, tokens.issue_token(ada, "rita")[1])
    page = ritas.get(f"/jobs/{rejected.id}")
    assert page.status_code == 200, page.text
    assert '<span class="badge state">rejected</span>' in page.text
    assert "Disclosure summary" in page.text and "small cells" in page.text
