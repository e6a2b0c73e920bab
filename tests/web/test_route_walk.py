"""Every route of the app, as every kind of person, against jobs in every review state.

The table below says what each person may get from each route. A route the table does
not name fails the test, so a new endpoint cannot go unclassified. Beside the statuses,
no response to anyone may carry key material, token hashes or the cookie key, and no
response to a researcher may carry an unreleased output or the disclosure evidence.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.conftest import PROJECT
from tests.web.conftest import CSRF, FAILING, PASSING, SMALL, SPEC, TestClient, World, sign_in
from tre.service import projects
from tre.service.session import Session

pytestmark = pytest.mark.slow

ANON = "anonymous"
ROLES = (ANON, "rita", "olga", "carl", "sam", "ada")
# rita: researcher in the project (author of A and C); olga: researcher outside it;
# carl: checker; sam: researcher in the project and checker (author of B); ada: admin.
MEMBERS = {"rita", "sam"}
CHECKERS = {"carl", "sam"}
RESEARCHERS_ONLY = {"rita", "olga"}
PUBLIC = {
    ("GET", "/openapi.json"),
    ("GET", "/api/health"),
    ("GET", "/login"),
    ("GET", "/static/style.css"),
}


@dataclass(frozen=True)
class Target:
    name: str  # A, B or C
    job: int
    author: str
    released: bool


def sees_job(who: str) -> bool:
    return who in MEMBERS or who in {"carl", "ada"}


def may_review(who: str, t: Target) -> bool:
    return who in CHECKERS and who != t.author


Expect = Callable[[str, Target | None], int]


def always(status: int) -> Expect:
    return lambda who, t: status


def job_view(who: str, t: Target | None) -> int:
    return 200 if sees_job(who) else 403


def release_files(who: str, t: Target | None) -> int:
    assert t is not None
    return 403 if not sees_job(who) else (200 if t.released else 409)


def cancel(who: str, t: Target | None) -> int:
    assert t is not None
    if not sees_job(who):
        return 403
    return 409 if who in (t.author, "ada") else 403  # allowed, but the job is not running


def review_get(who: str, t: Target | None) -> int:
    assert t is not None
    return 200 if may_review(who, t) else 403


def vote(ok: int) -> Expect:
    def expect(who: str, t: Target | None) -> int:
        assert t is not None
        return (409 if t.released else ok) if may_review(who, t) else 403

    return expect


def release(who: str, t: Target | None) -> int:
    assert t is not None
    # A and B lack their second reviews (403 with the reasons); C is settled already.
    return (409 if t.released else 403) if may_review(who, t) else 403


def queue(who: str, t: Target | None) -> int:
    return 200 if who in CHECKERS | {"ada"} else 403


def admin(who: str, t: Target | None) -> int:
    return 200 if who == "ada" else 403


def submit(who: str, t: Target | None) -> int:
    return 201 if who in MEMBERS else 403


def project(who: str, t: Target | None) -> int:
    return 403 if who == "olga" else 200


def request_project(who: str, t: Target | None) -> int:
    # Researchers and admins may request one (lead: rita, a researcher); carl checks only.
    return 403 if who == "carl" else 201


def register(who: str, t: Target | None) -> int:
    return 201 if who == "ada" else 403


#: (method, path) -> what each person gets; anonymous callers are handled in `expected`.
TABLE: dict[tuple[str, str], Expect] = {
    ("GET", "/openapi.json"): always(200),
    ("GET", "/api/health"): always(200),
    ("GET", "/api/whoami"): always(200),
    ("GET", "/api/people"): always(200),
    ("GET", "/api/projects"): always(200),
    ("GET", "/api/projects/{name}"): project,
    ("POST", "/api/projects"): request_project,
    ("POST", "/api/projects/{name}/approve"): admin,
    ("POST", "/api/projects/{name}/state"): admin,
    ("POST", "/api/people"): register,
    ("PATCH", "/api/people/{name}"): admin,
    # bob's admin role is confirmed already: ada is refused too (tests/web/test_admin_api).
    ("POST", "/api/people/{name}/confirm-admin"): always(403),
    ("GET", "/api/datasets"): always(200),
    ("GET", "/api/audit"): admin,
    ("GET", "/api/audit/verify"): admin,
    ("POST", "/api/jobs"): submit,
    ("GET", "/api/jobs"): always(200),
    ("GET", "/api/jobs/{job_id}"): job_view,
    ("GET", "/api/jobs/{job_id}/logs"): job_view,
    ("POST", "/api/jobs/{job_id}/cancel"): cancel,
    ("GET", "/api/jobs/{job_id}/outputs"): job_view,
    ("GET", "/api/jobs/{job_id}/release"): release_files,
    ("GET", "/api/reviews"): queue,
    ("GET", "/api/reviews/{job_id}"): review_get,
    ("POST", "/api/reviews/{job_id}/votes"): vote(201),
    ("POST", "/api/reviews/{job_id}/release"): release,
    ("GET", "/login"): always(200),
    ("POST", "/login"): always(303),
    ("POST", "/logout"): always(303),
    ("GET", "/"): always(303),
    ("GET", "/static/style.css"): always(200),
    ("GET", "/review"): queue,
    ("GET", "/review/{job_id}"): review_get,
    ("POST", "/review/{job_id}/vote"): vote(303),
    ("POST", "/review/{job_id}/release"): release,
    ("GET", "/jobs"): always(200),
    ("GET", "/jobs/{job_id}"): job_view,
    ("GET", "/jobs/{job_id}/release.zip"): release_files,
    ("GET", "/jobs/{job_id}/released/{output}/{filename}"): release_files,
    ("GET", "/admin"): admin,
    ("GET", "/admin/audit"): admin,
}


#: The project or person a route's {name} stands for; by default the walk's project.
#: Approving and rejecting act on projects of their own (requested by rita before the
#: walk), so the jobs of the walk's project keep their approval.
NAMES = {
    ("POST", "/api/projects/{name}/approve"): "walk-approve",
    ("POST", "/api/projects/{name}/state"): "walk-reject",
    ("PATCH", "/api/people/{name}"): "olga",
    ("POST", "/api/people/{name}/confirm-admin"): "bob",
}


def project_request(name: str) -> dict:
    """A project request any researcher or admin may make."""
    return {
        "name": name,
        "title": "Walking the routes",
        "purpose": "Checking who may do what.",
        "lead": "rita",
        "datasets": [{"dataset": "residents", "columns": ["local_authority"]}],
        "expires": "2099-01-01",
    }


def expected(method: str, path: str, who: str, t: Target | None) -> int:
    if who == ANON and (method, path) not in PUBLIC:
        if path.startswith("/api/") or (method == "POST" and path != "/logout"):
            return 401  # no token (API) or no session (form posts, and an empty sign-in)
        if path != "/logout":
            return 303  # a page: to the sign-in page
    return TABLE[(method, path)](who, t)


def routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        for method in sorted(methods - {"HEAD"}):
            found.append((method, route.path))
    return found


def secrets_of(home: Path) -> list[bytes]:
    """Byte strings that must never appear in any response: the master keys (raw, hex and
    base64), the cookie-signing key, and stored token hashes."""
    found: list[bytes] = []
    for path in [*sorted((home / "keys").rglob("*.key")), home / "web.key"]:
        if path.is_file():
            raw = path.read_bytes()
            found += [raw, raw.hex().encode(), base64.b64encode(raw).rstrip(b"=")]
    conn = sqlite3.connect(home / "state.db")
    found += [row[0].encode() for row in conn.execute("SELECT hash FROM api_tokens")]
    conn.close()
    return [s for s in found if len(s) >= 16]


def unreleased(home: Path, job: int) -> list[bytes]:
    """What a researcher must not see: the failing output's table lines and the report's
    evidence fields."""
    lines = []
    for output in (SMALL, FAILING):
        csv = home / "jobs" / f"{job:06d}" / "outputs" / output / f"{output}.csv"
        lines += [line.encode() for line in csv.read_text().splitlines()[1:] if line]
    evidence = (b'"dominance_share"', b'"records":', b'"p_ratio"', b'"published_n"')
    return [*lines, *evidence]


def send(
    app: FastAPI,
    world: World,
    browsers: dict[str, tuple[TestClient, str]],
    method: str,
    path: str,
    who: str,
    t: Target | None,
):
    """One request to `path` as `who`, with a body the route accepts; its URL and response."""
    browser, csrf = browsers[who]
    url = (
        path.replace("{job_id}", str(t.job) if t else "")
        .replace("{name}", NAMES.get((method, path), PROJECT))
        .replace("{output}", PASSING)
        .replace("{filename}", f"{PASSING}.csv")
    )
    headers = world.bearer(who) if who != ANON and path.startswith("/api/") else {}
    kwargs: dict = {"headers": headers}
    if (method, path) == ("POST", "/api/jobs"):
        kwargs["json"] = {"spec": SPEC}
    elif (method, path) == ("POST", "/api/projects"):
        kwargs["json"] = project_request(f"walk-by-{who}")
    elif path.endswith("/state"):
        kwargs["json"] = {"state": "rejected", "reason": "walk"}
    elif (method, path) == ("POST", "/api/people"):
        kwargs["json"] = {"name": f"new-{who}", "full_name": "New", "roles": ["checker"]}
    elif (method, path) == ("PATCH", "/api/people/{name}"):
        kwargs["json"] = {"accredited_until": "2098-12-31"}
    elif path.endswith("/votes"):
        kwargs["json"] = {"decision": "reject", "comment": "walk", "outputs": [FAILING]}
    elif (method, path) == ("POST", "/login"):
        # A browser of its own, so the shared one keeps its session.
        browser = TestClient(app, follow_redirects=False)
        nonce = CSRF.search(browser.get("/login").text)
        assert nonce is not None
        token = world.tokens.get(who, "")
        kwargs["data"] = {"token": token, "csrf": nonce.group(1), "next": "/"}
    elif (method, path) == ("POST", "/logout"):
        browser, csrf = sign_in(app, world.tokens[who]) if who != ANON else browsers[ANON]
        kwargs["data"] = {"csrf": csrf}
    elif method == "POST" and not path.startswith("/api/"):
        kwargs["data"] = {"csrf": csrf, "output": FAILING, "decision": "reject", "comment": "w"}
    return url, browser.request(method, url, **kwargs)


def test_every_route_as_every_role(app: FastAPI, world: World):
    targets = [
        Target("A", world.awaiting, "rita", released=False),
        Target("B", world.own, "sam", released=False),
        Target("C", world.released, "rita", released=True),
    ]
    s = Session.open(world.home, "rita")
    try:
        for name in ("walk-approve", "walk-reject"):
            projects.request_project(s, project_request(name))
    finally:
        s.close()
    # Every route the app has is in the table, and the table names no route it lacks.
    assert sorted(routes(app)) == sorted(TABLE), "classify every route in TABLE"
    browsers = {ANON: (TestClient(app, follow_redirects=False), "")}
    for who in ROLES[1:]:
        browsers[who] = sign_in(app, world.tokens[who])
    forbidden_everywhere = secrets_of(world.home)
    assert len(forbidden_everywhere) > 10, "the master keys were found to look for"
    forbidden_for_researchers = unreleased(world.home, world.awaiting)
    checked = 0
    for method, path in routes(app):
        for who in ROLES:
            for t in targets if "{job_id}" in path else [None]:
                url, response = send(app, world, browsers, method, path, who, t)
                want = expected(method, path, who, t)
                where = f"{method} {url} as {who}" + (f" on job {t.name}" if t else "")
                assert response.status_code == want, f"{where}: {response.text[:300]}"
                leaked = [s[:12] for s in forbidden_everywhere if s in response.content]
                assert not leaked, f"{where} leaks a secret"
                if who in RESEARCHERS_ONLY:
                    shown = [s for s in forbidden_for_researchers if s in response.content]
                    assert not shown, f"{where} shows {shown[0]!r} of an unreleased output"
                checked += 1
    assert checked > 300


def test_what_each_person_may_list(client: TestClient, world: World):
    def jobs(who: str) -> set[int]:
        response = client.get("/api/jobs", params={"all": True}, headers=world.bearer(who))
        return {j["id"] for j in response.json()}

    everything = {world.awaiting, world.own, world.released}
    assert jobs("olga") == set()
    assert jobs("rita") == everything  # her project's jobs, including sam's
    assert jobs("carl") == everything
    assert jobs("ada") == everything
    people = client.get("/api/people", headers=world.bearer("rita")).json()
    assert [p["name"] for p in people] == ["rita"]
    assert client.get("/api/projects", headers=world.bearer("olga")).json() == []
    # Before the decision a researcher sees no vote; a checker sees no other checker's
    # vote until casting their own.
    client.post(
        f"/api/reviews/{world.awaiting}/votes",
        json={"decision": "reject", "comment": "too small", "outputs": [FAILING]},
        headers=world.bearer("carl"),
    )
    for who in ("rita", "sam"):
        outputs = client.get(f"/api/jobs/{world.awaiting}/outputs", headers=world.bearer(who))
        assert outputs.json()["reviews"] == [], who
        assert outputs.json()["counts"][FAILING] == 1
