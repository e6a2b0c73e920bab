"""The SQLite state store: connection, migrations and the repositories of each object."""

from tre.store.db import Database

__all__ = ["Database"]
