"""The migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from reminders.db.migrate import downgrade, upgrade
from reminders.db.models import Base


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_works(engine: Engine) -> None:
    upgrade(engine)  # already at head: nothing to do
    assert "messages" in inspect(engine).get_table_names()
    downgrade(engine, "base")
    assert "messages" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "messages" in inspect(engine).get_table_names()
