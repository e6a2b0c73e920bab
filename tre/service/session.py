"""Who is acting, on which TRE home: the context every service function takes."""

from __future__ import annotations

import os
import pwd
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tre import audit
from tre.errors import PermissionDenied
from tre.home import Home
from tre.keyservice.process import ensure_running
from tre.models import Person, Role, utcnow
from tre.store import Database, repo

SYSTEM = "tre"  # the actor name of the dispatcher and other automatic actions


def os_user() -> str:
    """The name of the process's real OS user.

    Taken from the real uid, never from LOGNAME or USER (which `getpass.getuser()`
    trusts): anyone can set those, and the acting person must not be one of them.
    """
    return pwd.getpwuid(os.getuid()).pw_name


@dataclass
class Session:
    home: Home
    db: Database
    actor: str
    today: Callable[[], date] = field(default=lambda: utcnow().date())

    @classmethod
    def open(cls, root: Path | None = None, acting_as: str | None = None) -> Session:
        """Open the home at `root` as the OS user, or as `acting_as` in a demo home."""
        home = Home.open(root)
        if acting_as is not None and not home.config.demo:
            raise PermissionDenied(
                "--as works only in a demo home (made with 'tre init --demo')",
                fix="act as yourself; real multi-user deployments authenticate people through "
                "the tre service",
            )
        if home.config.isolation == "sandbox":
            ensure_running(home)  # every action is audited, and the audit key is there
        db = Database.for_home(home)
        return cls(home=home, db=db, actor=acting_as or os_user())

    def close(self) -> None:
        self.db.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.db.write() as conn:
            yield conn

    def person(self) -> Person | None:
        """The acting person's registration, or None if they are not registered."""
        return repo.find_person(self.conn, self.actor)

    def record(
        self,
        conn: sqlite3.Connection,
        action: str,
        obj: str,
        role: Role | str,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> audit.AuditEvent:
        """Append an audit event inside the caller's transaction."""
        return audit.append(
            conn,
            actor=actor or self.actor,
            role=str(role),
            action=action,
            obj=obj,
            details=details,
        )
