"""The acting person on the TRE host is the process's real OS user, whatever the
environment says."""

from __future__ import annotations

import os
import pwd

import pytest

from tre import audit
from tre.cli.main import main as tre_main
from tre.service import people
from tre.service.session import Session, os_user

REAL = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def real_home(tmp_path):
    """A real (not demo) home whose first admin is this OS user, with bob, a second
    confirmed admin the environment will claim to be."""
    root = tmp_path / "real"
    people.init_home(root, admin=REAL, full_name="The Real User")
    s = Session.open(root)
    try:
        people.register_person(s, name="bob", full_name="Bob", roles=["admin"])
        people.confirm_admin(s, "bob")
    finally:
        s.close()
    return root


def test_the_os_user_comes_from_the_real_uid_not_the_environment(monkeypatch):
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "bob")
    assert os_user() == REAL != "bob"


def test_logname_cannot_make_the_cli_act_as_another_admin(real_home, monkeypatch, capsys):
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "bob")
    args = ["admin", "register", "eve", "--full-name", "Eve", "--role", "checker"]
    code = tre_main(["--home", str(real_home), *args])
    assert code == 0, capsys.readouterr().err
    s = Session.open(real_home)
    try:
        assert s.actor == REAL
        registered = audit.events(s.conn, obj="person:eve")
        assert [(e.actor, e.action) for e in registered] == [(REAL, "person.register")]
        assert s.person() is not None and s.person().name == REAL
    finally:
        s.close()
