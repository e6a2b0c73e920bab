"""The JSON API: authentication, errors a person can act on, and each endpoint doing
what the CLI does (the route walk covers every endpoint's status for every role)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3
import zipfile

import pytest

from tests.conftest import PROJECT
from tests.web.conftest import FAILING, PASSING, SMALL, SPEC, World, report_of, status_of
from tre import audit
from tre.service import people
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"kind", "message", "reasons", "fix", "owner", "exit_code"}
    return body["error"]


# -- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "carries no API token"),
        ("Basic cml0YTpwYXNzd29yZA==", "carries no API token"),
        ("Bearer nonsense", "not a tre API token"),
        ("Bearer tre_0123456789ab_" + "A" * 43, "does not know that API token"),
    ],
)
def test_requests_without_a_good_token_are_refused_with_401(client, header, says):
    response = client.get("/api/jobs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = error_of(response)
    assert says in error["message"]
    assert "token" in error["fix"]


#: What an anonymous caller may send: nothing of it is read before the token is checked.
JUNK_BODIES = [
    {"json": {"spec": {}}},
    {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
]


@pytest.mark.parametrize("header", [None, "Bearer junk", "Bearer tre_0123456789ab_" + "A" * 43])
def test_anonymous_callers_get_401_before_any_body_validation_on_every_route(app, client, header):
    # FastAPI validates the body before an endpoint's dependencies run: without the
    # guard, `POST /api/jobs` with {"spec": {}} and a made-up token listed the fields.
    token = {"Authorization": header} if header else {}
    checked = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/") or path == "/api/health":
            continue
        url = path.replace("{job_id}", "not-a-number").replace("{name}", "no such name")
        for method in sorted(route.methods - {"HEAD"}):
            for body in JUNK_BODIES if method in ("POST", "PATCH") else [{}]:
                headers = {**body.get("headers", {}), **token}
                sent = {k: v for k, v in body.items() if k != "headers"}
                response = client.request(method, url, headers=headers, **sent)
                where = f"{method} {url} with {header!r} and {sent}"
                assert response.status_code == 401, f"{where}: {response.text[:300]}"
                error = error_of(response)
                assert error["kind"] == "Unauthenticated" and not error["reasons"], where
                checked += 1
    assert checked > 30


def test_a_token_with_the_wrong_secret_is_not_accepted(client, world: World):
    real = world.tokens["rita"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    response = client.get("/api/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "does not know" in error_of(response)["message"]


def test_an_expired_token_is_refused_and_says_when_it_expired(client, world: World):
    token_id = world.tokens["rita"].split("_")[1]
    with sqlite3.connect(world.home / "state.db") as conn:  # the clock has moved on
        conn.execute(
            "UPDATE api_tokens SET expires_at = '2020-01-31T00:00:00+00:00' WHERE id = ?",
            (token_id,),
        )
    response = client.get("/api/whoami", headers=world.bearer("rita"))
    assert response.status_code == 401
    error = error_of(response)
    assert f"API token {token_id} expired on 2020-01-31" in error["message"]
    assert "tre admin token" in error["fix"]


def test_a_revoked_token_and_a_deactivated_person_are_refused(client, world: World):
    s = Session.open(world.home, "ada")
    try:
        from tre.service import tokens

        tokens.revoke_token(s, world.tokens["rita"].split("_")[1])
        people.update_person(s, "carl", active=False)
    finally:
        s.close()
    revoked = client.get("/api/whoami", headers=world.bearer("rita"))
    assert revoked.status_code == 401 and "was revoked" in error_of(revoked)["message"]
    inactive = client.get("/api/whoami", headers=world.bearer("carl"))
    assert inactive.status_code == 401
    assert "deactivated" in error_of(inactive)["message"]


def test_the_token_is_never_stored_or_audited(client, world: World):
    client.get("/api/whoami", headers=world.bearer("rita"))
    data = (world.home / "state.db").read_bytes()
    for token in world.tokens.values():
        assert token.encode() not in data
        assert token.split("_", 2)[2].encode() not in data


# -- errors and validation ----------------------------------------------------------------


def test_a_malformed_body_gets_422_naming_every_problem(client, world: World):
    response = client.post("/api/jobs", json={"spek": {}}, headers=world.bearer("rita"))
    assert response.status_code == 422
    error = error_of(response)
    assert error["kind"] == "InputError"
    assert "body.spec: Field required" in error["reasons"]
    assert "body.spek: unknown field (check the spelling)" in error["reasons"]
    assert "/openapi.json" in error["fix"]


def test_a_body_that_is_not_json_gets_422(client, world: World):
    response = client.post(
        "/api/jobs",
        content=b"project: lcr",
        headers={**world.bearer("rita"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert error_of(response)["reasons"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"decision": "maybe", "comment": "x"}, "body.decision: Input should be 'approve'"),
        ({"decision": "approve", "comment": ""}, "body.comment: String should have at least"),
        ({"decision": "reject"}, "body.comment: Field required"),
        ({"decision": "reject", "comment": "x", "outputs": []}, "body.outputs: List should"),
    ],
)
def test_malformed_votes_are_refused_with_readable_reasons(client, world: World, body, reason):
    response = client.post(
        f"/api/reviews/{world.awaiting}/votes", json=body, headers=world.bearer("carl")
    )
    assert response.status_code == 422
    assert any(r.startswith(reason) for r in error_of(response)["reasons"]), response.json()
    s = Session.open(world.home, "ada")
    assert repo.list_reviews(s.conn, world.awaiting) == []
    s.close()


def test_path_and_query_parameters_are_validated(client, world: World):
    assert client.get("/api/jobs/abc", headers=world.bearer("rita")).status_code == 422
    tail = client.get(f"/api/jobs/{world.awaiting}/logs?tail=0", headers=world.bearer("rita"))
    assert tail.status_code == 422
    assert any(r.startswith("query.tail") for r in error_of(tail)["reasons"])


def test_an_invalid_spec_is_a_400_with_the_specs_own_reasons(client, world: World):
    spec = {**SPEC, "title": ""}
    del spec["datasets"]
    response = client.post("/api/jobs", json={"spec": spec}, headers=world.bearer("rita"))
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == "the job spec is not valid"
    assert any("datasets" in r for r in error["reasons"])
    assert any("title" in r for r in error["reasons"])


def test_code_that_is_not_base64_is_refused(client, world: World):
    body = {"spec": SPEC, "code": {"summarise": "not base64!"}}
    response = client.post("/api/jobs", json=body, headers=world.bearer("rita"))
    assert response.status_code == 400
    assert "not base64" in error_of(response)["message"]


@pytest.mark.parametrize(
    "key",
    ["../../../../escaped", "ABSOLUTE", PASSING, "summarise/../../../../escaped"],
    ids=["parent", "absolute", "a-table-step", "through-a-step"],
)
def test_code_for_anything_but_a_python_step_is_refused_and_writes_nothing(
    client, world: World, tmp_path, key
):
    # code/{key}.pkl would land outside the job folder: ../../../../ is beside the home.
    key = str(tmp_path / "escaped") if key == "ABSOLUTE" else key
    spec = {
        **SPEC,
        "steps": [
            *SPEC["steps"],
            {"kind": "python", "name": "summarise", "function": "summary.py:summarise"},
        ],
    }
    code = {"summarise": base64.b64encode(b"its code").decode(), key: "AAAA"}
    before = client.get("/api/jobs", headers=world.bearer("rita")).json()
    jobs_before = sorted(p.name for p in (world.home / "jobs").iterdir())

    response = client.post(
        "/api/jobs", json={"spec": spec, "code": code}, headers=world.bearer("rita")
    )

    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == (
        f"code was attached for {key!r}, which is not the name of a python step of the job spec"
    )
    assert error["reasons"] == ["the spec's python steps are 'summarise'"]
    assert "key each step's code by the name of its python step" in error["fix"]
    assert not list(tmp_path.rglob("escaped*"))
    assert client.get("/api/jobs", headers=world.bearer("rita")).json() == before
    assert sorted(p.name for p in (world.home / "jobs").iterdir()) == jobs_before


def test_unknown_routes_and_methods_are_json_errors(client, world: World):
    missing = client.get("/api/nothing", headers=world.bearer("rita"))
    assert missing.status_code == 404 and error_of(missing)["kind"] == "NotFound"
    wrong = client.delete("/api/jobs", headers=world.bearer("rita"))
    assert wrong.status_code == 405 and "not allowed" in error_of(wrong)["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/jobs", "GET, POST"),
        ("PUT", "/api/people", "GET, POST"),
        ("DELETE", "/api/jobs/1", "GET"),
        ("GET", "/api/jobs/1/cancel", "POST"),
    ],
)
def test_a_405_names_every_method_the_path_takes(client, method, path, allow):
    # Each route has one method; Starlette's 405 named only the first route's
    # (`Allow: POST` for /api/jobs), which Schemathesis flagged.
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_an_unknown_job_is_404(client, world: World):
    response = client.get("/api/jobs/999", headers=world.bearer("carl"))
    assert response.status_code == 404
    assert error_of(response)["message"] == "there is no job 999"


def test_openapi_describes_every_api_endpoint_and_the_bearer_scheme(client, app):
    spec = client.get("/openapi.json").json()
    api_paths = {r.path for r in app.routes if getattr(r, "path", "").startswith("/api/")}
    assert set(spec["paths"]) == api_paths
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/login" not in spec["paths"]
    # The interactive docs would load scripts from the internet.
    assert client.get("/docs").status_code == 404


def test_every_response_carries_the_security_headers(client, world: World):
    for response in (client.get("/openapi.json"), client.get("/api/jobs"), client.get("/login")):
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


# -- the endpoints at work ----------------------------------------------------------------


def test_submit_queues_a_job_with_its_folder_and_audit_event(client, world: World):
    response = client.post("/api/jobs", json={"spec": SPEC}, headers=world.bearer("rita"))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued" and job["submitter"] == "rita"
    assert "handle" not in job
    assert (world.home / "jobs" / f"{job['id']:06d}" / "spec.json").exists()
    s = Session.open(world.home, "ada")
    events = audit.events(s.conn, obj=f"job:{job['id']}")
    s.close()
    assert [(e.actor, e.action) for e in events] == [("rita", "job.submit"), ("rita", "job.queued")]


def test_a_refused_submission_lists_every_reason_and_is_kept(client, world: World):
    spec = {**SPEC, "resources": {"workers": 8}}
    response = client.post("/api/jobs", json={"spec": spec}, headers=world.bearer("olga"))
    assert response.status_code == 403
    error = error_of(response)
    assert "was refused" in error["message"]
    assert any("olga is not a member" in r for r in error["reasons"])
    assert any("workers 8 is over" in r for r in error["reasons"])
    mine = client.get("/api/jobs", headers=world.bearer("olga")).json()
    assert [j["state"] for j in mine] == ["refused"]


def test_the_researcher_follows_and_cancels_a_job(client, world: World):
    job = client.post("/api/jobs", json={"spec": SPEC}, headers=world.bearer("sam")).json()
    detail = client.get(f"/api/jobs/{job['id']}", headers=world.bearer("sam")).json()
    assert detail["job"]["state"] == "queued" and detail["progress"] == {}
    logs = client.get(f"/api/jobs/{job['id']}/logs", headers=world.bearer("sam")).json()
    assert "has no logs yet (it is queued)" in logs["text"]
    other = client.post(f"/api/jobs/{job['id']}/cancel", headers=world.bearer("rita"))
    assert other.status_code == 403
    assert "only the job's submitter (sam) or an admin" in error_of(other)["reasons"][0]
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel", headers=world.bearer("sam"))
    assert cancelled.json()["state"] == "cancelled"


def test_the_queue_is_oldest_first_with_the_reports_risk(client, world: World):
    queue = client.get("/api/reviews", headers=world.bearer("sam")).json()
    assert [item["job"]["id"] for item in queue] == [world.awaiting, world.own]
    first = queue[0]
    assert first["risk"]["status"] == report_of(world, world.awaiting)["status"] == "fail"
    assert first["risk"]["failing_cells"] > 0 and first["risk"]["outputs"] == 3
    assert [item["yours"] for item in queue] == [False, True]


def test_two_checkers_vote_then_release_and_the_researcher_downloads(client, world: World):
    job = world.awaiting
    for checker in ("carl", "chen"):
        detail = client.get(f"/api/reviews/{job}", headers=world.bearer(checker)).json()
        assert detail["reviews"] == []  # nobody's vote shows before one's own
        assert detail["report"] == report_of(world, job)
        assert not detail["ready_to_release"]
        for outputs, decision in (([PASSING], "approve"), ([SMALL, FAILING], "reject")):
            voted = client.post(
                f"/api/reviews/{job}/votes",
                json={"decision": decision, "comment": f"{checker} checked", "outputs": outputs},
                headers=world.bearer(checker),
            )
            assert voted.status_code == 201, voted.text
    after = client.get(f"/api/reviews/{job}", headers=world.bearer("chen")).json()
    assert after["ready_to_release"] and len(after["reviews"]) == 6
    early = client.get(f"/api/jobs/{job}/release", headers=world.bearer("rita"))
    assert early.status_code == 409 and "no released outputs" in error_of(early)["message"]
    released = client.post(f"/api/reviews/{job}/release", headers=world.bearer("chen"))
    assert released.json()["state"] == "partially_released"

    download = client.get(f"/api/jobs/{job}/release", headers=world.bearer("rita"))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    manifest = json.loads(archive.read(f"manifest-{job}.json"))
    assert sorted(manifest["reviewers"][PASSING]) == ["carl", "chen"]
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    assert not [n for n in archive.namelist() if SMALL in n or FAILING in n]
    s = Session.open(world.home, "ada")
    fetches = [e for e in audit.events(s.conn, obj=f"job:{job}") if e.action == "release.fetch"]
    s.close()
    assert [e.actor for e in fetches] == ["rita"]


def test_a_failing_output_cannot_be_approved_through_the_api(client, world: World):
    assert status_of(world, world.awaiting, FAILING) == "fail"
    response = client.post(
        f"/api/reviews/{world.awaiting}/votes",
        json={"decision": "approve", "comment": "fine", "outputs": [FAILING]},
        headers=world.bearer("carl"),
    )
    assert response.status_code == 403
    error = error_of(response)
    assert "fail the disclosure rules" in error["message"]
    assert "reject them, or return the request" in error["fix"]


def test_the_catalog_and_the_audit_log(client, world: World):
    datasets = client.get("/api/datasets", headers=world.bearer("olga")).json()
    assert {d["name"] for d in datasets} == {"residents", "fire_incidents", "early_help"}
    assert all("files" not in d for d in datasets)
    project = client.get(f"/api/projects/{PROJECT}", headers=world.bearer("sam")).json()
    assert project["approved_by"] == "bob"
    events = client.get("/api/audit?last=5", headers=world.bearer("ada")).json()
    assert len(events) == 5 and events[-1]["seq"] > events[0]["seq"]
    verified = client.get("/api/audit/verify", headers=world.bearer("ada")).json()
    assert verified["ok"] and verified["events"] > 20


def test_a_job_id_too_big_for_the_store_is_a_404_not_a_500(client, world: World):
    big = 2**70
    for method, path in (
        ("GET", f"/api/jobs/{big}"),
        ("GET", f"/api/jobs/{big}/logs"),
        ("POST", f"/api/jobs/{big}/cancel"),
        ("GET", f"/api/jobs/{big}/outputs"),
    ):
        response = client.request(method, path, headers=world.bearer("rita"))
        assert response.status_code == 404, (method, path, response.text)
