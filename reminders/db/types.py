"""Column types and the clock: times are timezone-aware UTC everywhere, on SQLite too.

PostgreSQL keeps ``timestamptz``; SQLite keeps naive UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``),
which compares in time order. :class:`UtcDateTime` converts at the boundary, so arithmetic
never mixes naive and aware values; :func:`sqlite_time` is the same encoding for the few hot
paths that hand values to SQLite's driver directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import BigInteger, DateTime, Integer, TypeDecorator
from sqlalchemy.engine import Dialect


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=8192)
def sqlite_time(value: datetime) -> str:
    """What :class:`UtcDateTime` stores on SQLite, for raw DB-API statements: naive UTC text
    with microseconds (so text comparison is time order)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# Integer primary keys that autoincrement on SQLite and are BIGINT identity on PostgreSQL.
BigId = BigInteger().with_variant(Integer, "sqlite")
