"""API tokens: issued by admins, stored hashed, expiring, revocable, audited."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from tre import audit
from tre.errors import InputError, NotFound, PermissionDenied, StateError
from tre.models import utcnow
from tre.service import people, tokens
from tre.store import tokens as store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_an_admin_issues_a_token_that_is_stored_only_as_its_hash(session_as, home):
    s = session_as("ada")
    record, text = tokens.issue_token(s, "rita")
    assert text.startswith(f"tre_{record.id}_") and len(text) == 4 + 12 + 1 + 43
    assert text.encode() not in (home / "state.db").read_bytes()
    assert tokens.authenticate(s.conn, text).person == "rita"
    assert record.expires_at - record.created_at == tokens.DEFAULT_LIFETIME
    event = audit.events(s.conn)[-1]
    assert (event.actor, event.action, event.object) == ("ada", "token.issue", "person:rita")
    assert event.details["token_id"] == record.id and text not in str(event.details)


def test_only_admins_issue_revoke_or_list_tokens(session_as):
    rita = session_as("rita")
    for attempt in (
        lambda: tokens.issue_token(rita, "rita"),
        lambda: tokens.list_tokens(rita),
        lambda: tokens.revoke_token(rita, "0123456789ab"),
    ):
        with pytest.raises(PermissionDenied) as refused:
            attempt()
        assert "needs the admin role; rita holds: researcher" in refused.value.reasons[0]


def test_tokens_go_only_to_registered_active_people(session_as):
    s = session_as("ada")
    with pytest.raises(NotFound, match="nobody called 'zed'"):
        tokens.issue_token(s, "zed")
    people.update_person(s, "olga", active=False)
    with pytest.raises(StateError) as refused:
        tokens.issue_token(s, "olga")
    assert "tre admin update olga --activate" in (refused.value.fix or "")


@pytest.mark.parametrize(
    ("text", "expires"),
    [
        (None, NOW + timedelta(days=30)),
        ("90d", NOW + timedelta(days=90)),
        ("12h", NOW + timedelta(hours=12)),
        ("2026-04-30", datetime(2026, 5, 1, tzinfo=UTC)),  # valid through the whole day
    ],
)
def test_expiry_is_a_date_or_a_duration(text, expires):
    assert tokens.parse_expiry(text, NOW) == expires


def test_an_unreadable_past_or_too_distant_expiry_is_refused(session_as):
    with pytest.raises(InputError, match="cannot read the expiry 'soon'"):
        tokens.parse_expiry("soon", NOW)
    s = session_as("ada")
    for expires, says in (
        (utcnow() - timedelta(days=1), "is not in the future"),
        (utcnow() + timedelta(days=400), "at most 366 days"),
    ):
        with pytest.raises(InputError) as refused:
            tokens.issue_token(s, "rita", expires=expires)
        assert says in refused.value.reasons[0]


def test_expired_revoked_and_forged_tokens_are_refused_with_the_reason(session_as):
    s = session_as("ada")
    record, text = tokens.issue_token(s, "rita", expires=utcnow() + timedelta(days=1))
    later = utcnow() + timedelta(days=2)
    with pytest.raises(tokens.Unauthenticated, match=f"API token {record.id} expired on"):
        tokens.authenticate(s.conn, text, now=later)
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")
    with pytest.raises(tokens.Unauthenticated, match="does not know that API token"):
        tokens.authenticate(s.conn, forged)
    with pytest.raises(tokens.Unauthenticated, match="not a tre API token"):
        tokens.authenticate(s.conn, "hunter2")
    revoked = tokens.revoke_token(s, record.id)
    assert revoked.revoked_by == "ada" and tokens.token_state(revoked) == "revoked"
    with pytest.raises(tokens.Unauthenticated, match="was revoked on"):
        tokens.authenticate(s.conn, text)
    with pytest.raises(StateError, match="already revoked"):
        tokens.revoke_token(s, record.id)
    with pytest.raises(NotFound, match="no token 'nope'"):
        tokens.revoke_token(s, "nope")
    assert audit.events(s.conn)[-1].action == "token.revoke"


def test_a_deactivated_persons_token_stops_working(session_as):
    s = session_as("ada")
    _, text = tokens.issue_token(s, "sam")
    people.update_person(s, "sam", active=False)
    with pytest.raises(tokens.Unauthenticated, match="deactivated"):
        tokens.authenticate(s.conn, text)


def test_the_cli_prints_a_token_once_or_writes_it_to_a_private_file(cli, home, tmp_path):
    printed = cli("admin", "token", "rita", "--expires", "7d", who="ada")
    assert printed.code == 0, printed.err
    token = printed.out.strip()
    assert token.startswith("tre_") and len(printed.out.splitlines()) == 1
    assert "this is its only copy" in printed.err and token not in printed.err
    target = tmp_path / "carl.token"
    written = cli("admin", "token", "carl", "--out", target, who="ada")
    assert written.code == 0, written.err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert target.read_text().startswith("tre_") and target.read_text().strip() not in written.out
    again = cli("admin", "token", "carl", "--out", target, who="ada")
    assert again.code == 2 and "already exists" in again.err
    listing = cli("admin", "tokens", who="ada")
    assert "rita" in listing.out and "carl" in listing.out and "active" in listing.out
    assert token not in listing.out
    token_id = token.split("_")[1]
    assert cli("admin", "revoke-token", token_id, who="ada").code == 0
    assert "revoked" in cli("admin", "tokens", "rita", who="ada").out
    refused = cli("admin", "token", "rita", who="rita")
    assert refused.code == 4 and "you cannot issue API tokens" in refused.err


def test_the_store_lists_tokens_oldest_first(session_as):
    s = session_as("ada")
    first, _ = tokens.issue_token(s, "rita")
    second, _ = tokens.issue_token(s, "carl")
    assert [t.id for t in store.list_tokens(s.conn)] == [first.id, second.id]
    assert [t.id for t in tokens.list_tokens(s, "carl")] == [second.id]
