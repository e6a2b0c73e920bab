"""Signing out ends the browser session on the server: a copy of the cookie stops
working, other sessions of the same token go on, and the end is an audit event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from tests.web.conftest import FAILING, PASSING, TestClient, World, sign_in
from tre import audit
from tre.service.session import Session
from tre.store import Database, repo, sessions
from tre.web.auth import SESSION_COOKIE

pytestmark = pytest.mark.slow


def copy_of(app: FastAPI, browser: TestClient) -> TestClient:
    """Another client holding the same session cookie (as if copied off a shared machine)."""
    thief = TestClient(app, follow_redirects=False)
    thief.cookies.set(SESSION_COOKIE, browser.cookies[SESSION_COOKIE])
    return thief


def vote(browser: TestClient, csrf: str, job: int, output: str):
    return browser.post(
        f"/review/{job}/vote",
        data={"csrf": csrf, "output": output, "decision": "reject", "comment": "small cells"},
    )


def reviews_of(world: World, job: int) -> list:
    s = Session.open(world.home, "ada")
    try:
        return repo.list_reviews(s.conn, job)
    finally:
        s.close()


def session_events(world: World) -> list[audit.AuditEvent]:
    s = Session.open(world.home, "ada")
    try:
        return [e for e in audit.events(s.conn) if e.action == "session.end"]
    finally:
        s.close()


def test_a_copied_cookie_stops_working_when_its_browser_signs_out(app, world: World):
    browser, csrf = sign_in(app, world.tokens["carl"])
    thief = copy_of(app, browser)
    assert thief.get("/review").status_code == 200  # the copy works until sign-out
    out = browser.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser.cookies
    page = thief.get(f"/review/{world.awaiting}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=%2Freview%2F{world.awaiting}"
    # The CSRF token is derived from the cookie, so the copy has it too: still refused.
    posted = vote(thief, csrf, world.awaiting, FAILING)
    assert posted.status_code == 401
    assert "this session was signed out" in posted.text and "sign in again" in posted.text
    assert reviews_of(world, world.awaiting) == []


def test_another_session_of_the_same_token_goes_on(app, world: World):
    first, first_csrf = sign_in(app, world.tokens["carl"])
    second, second_csrf = sign_in(app, world.tokens["carl"])
    assert first.post("/logout", data={"csrf": first_csrf}).status_code == 303
    assert second.get(f"/review/{world.awaiting}").status_code == 200
    assert vote(second, second_csrf, world.awaiting, PASSING).status_code == 303
    assert [r.output for r in reviews_of(world, world.awaiting)] == [PASSING]


@pytest.mark.parametrize("sent", ["", "not-the-token"])
def test_sign_out_without_the_csrf_token_is_refused_and_the_session_stays(
    app, world: World, sent: str
):
    browser, _ = sign_in(app, world.tokens["rita"])
    refused = browser.post("/logout", data={"csrf": sent})
    assert refused.status_code == 403
    assert "security token is missing or out of date" in refused.text
    assert browser.get("/jobs").status_code == 200
    assert copy_of(app, browser).get("/jobs").status_code == 200
    assert session_events(world) == []


def test_sign_out_is_audited_by_token_id_never_the_token_or_cookie(app, world: World):
    browser, csrf = sign_in(app, world.tokens["rita"])
    cookie = browser.cookies[SESSION_COOKIE]
    thief = copy_of(app, browser)
    assert browser.post("/logout", data={"csrf": csrf}).status_code == 303
    # Signing out the copy as well ends nothing more: one event, and the cookie cleared.
    again = thief.post("/logout", data={"csrf": csrf})
    assert again.status_code == 303 and f'{SESSION_COOKIE}=""' in again.headers["set-cookie"]
    (event,) = session_events(world)
    assert (event.actor, event.object) == ("rita", "person:rita")
    assert event.details == {"token_id": world.tokens["rita"].split("_")[1], "via": "browser"}
    s = Session.open(world.home, "ada")
    try:
        logged = [str(e.details) + e.object for e in audit.events(s.conn)]
        assert audit.verify(s.conn).ok
    finally:
        s.close()
    secret, nonce = world.tokens["rita"], cookie.split(".")[3]
    assert not [text for text in logged if secret in text or cookie in text or nonce in text]


def test_sign_out_without_a_session_just_clears_the_cookie(app, world: World):
    for cookie in (None, "v1.0123456789ab.9999999999.00.forged"):
        browser = TestClient(app, follow_redirects=False)
        if cookie is not None:
            browser.cookies.set(SESSION_COOKIE, cookie)
        out = browser.post("/logout", data={"csrf": ""})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert session_events(world) == []


def test_ended_sessions_are_forgotten_once_their_cookie_has_expired(tmp_path):
    db = Database.create(tmp_path / "state.db")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        with db.write() as conn:
            assert sessions.end_session(conn, "old", "tok1", now, now + timedelta(hours=1))
            assert sessions.end_session(conn, "live", "tok1", now, now + timedelta(hours=8))
            assert not sessions.end_session(conn, "live", "tok1", now, now + timedelta(hours=8))
        later = now + timedelta(hours=2)
        with db.write() as conn:
            assert sessions.end_session(conn, "new", "tok2", later, later + timedelta(hours=8))
        assert not sessions.session_ended(db.conn, "old")
        assert sessions.session_ended(db.conn, "live") and sessions.session_ended(db.conn, "new")
        rows = db.conn.execute("SELECT nonce FROM ended_sessions ORDER BY nonce").fetchall()
        assert [r["nonce"] for r in rows] == ["live", "new"]
    finally:
        db.close()


def test_signing_out_prunes_expired_rows_in_the_served_home(app, world: World):
    db = Database(world.home / "state.db")
    past = datetime.now(UTC) - timedelta(hours=1)
    try:
        with db.write() as conn:
            sessions.end_session(conn, "stale", "tok1", past - timedelta(hours=8), past)
    finally:
        db.close()
    browser, csrf = sign_in(app, world.tokens["rita"])
    assert browser.post("/logout", data={"csrf": csrf}).status_code == 303
    db = Database(world.home / "state.db")
    try:
        nonces = [r["nonce"] for r in db.conn.execute("SELECT nonce FROM ended_sessions")]
    finally:
        db.close()
    assert "stale" not in nonces and len(nonces) == 1
