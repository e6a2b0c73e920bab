"""Schema migrations of the state store: the SQL files in `tre/store/schema/`, applied in
the order of their names, each once, each inside one transaction.

Add a migration as a new file `NNN_what_it_does.sql`; never edit one that has been
released. Migrations are recorded by name (table `schema_migrations`), so files added
in parallel branches apply cleanly in name order.
"""

from __future__ import annotations

from importlib import resources

#: The bookkeeping table itself; created before any migration runs.
BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def migrations() -> list[tuple[str, str]]:
    """(name, SQL) of every migration this tre knows, in the order they apply."""
    folder = resources.files("tre.store") / "schema"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]
