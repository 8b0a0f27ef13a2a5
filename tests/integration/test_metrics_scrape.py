"""The outbox and reply gauges on both databases: right numbers for a small outbox, read at most
once per TTL, no failure when the database is down, and (PostgreSQL) a scrape's queries read
through indexes, never a sequential scan of the tables, once they hold 50,000 old rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from reminders.db.engine import make_engine, make_session_factory
from reminders.db.models import InboundMessage, Message
from reminders.metrics import DatabaseCollector, count_messages, count_replies

NOW = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


def message(key: str, status: str, channel: str, due: datetime) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "rule": "r",
        "kind": "reminder",
        "channel": channel,
        "template": "t",
        "due_at": due,
        "status": status,
        "attempts": 0,
        "data": {},
        "created_at": NOW,
        "updated_at": NOW,
    }


def inbound(n: int, received: datetime, classification: str | None) -> dict[str, Any]:
    return {
        "channel": "sms",
        "provider_message_id": f"SM{n}",
        "from_address": "+14105550100",
        "body": "hi",
        "received_at": received,
        "classification": classification,
        "processed_at": None if classification is None else received,
    }


def small_outbox(db: Session) -> None:
    old, recent, ahead = NOW - timedelta(days=3), NOW - timedelta(hours=2), NOW + timedelta(days=2)
    rows = [
        # Live: every one counts, however old.
        message("p1", "planned", "sms", old),
        message("p2", "planned", "sms", ahead),
        message("p3", "planned", "email", recent),
        message("s1", "sending", "sms", old),
        # Final: only those due in the last 24 h (or later).
        message("d1", "sent", "sms", recent),
        message("d2", "sent", "sms", recent),
        message("d3", "sent", "sms", old),
        message("d4", "delivered", "email", recent),
        message("d5", "failed", "sms", old),
        message("c1", "cancelled", "email", ahead),
        message("k1", "skipped", "sms", NOW - timedelta(hours=23, minutes=59)),
    ]
    db.execute(insert(Message), rows)
    db.execute(
        insert(InboundMessage),
        [
            inbound(1, old, None),  # stored, never processed: counted however old
            inbound(2, recent, None),
            inbound(3, old, "confirm"),  # outside the window
            inbound(4, recent, "confirm"),
            inbound(5, NOW - timedelta(minutes=1), "confirm"),
            inbound(6, recent, "crisis"),
        ],
    )
    db.commit()


def test_a_scrape_counts_a_small_outbox(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as db:
        small_outbox(db)
        messages = count_messages(db, NOW)
        replies = count_replies(db, NOW)
    nonzero = {k: v for k, v in messages.items() if v}
    assert nonzero == {
        ("planned", "sms"): 2,
        ("planned", "email"): 1,
        ("sending", "sms"): 1,
        ("sent", "sms"): 2,
        ("delivered", "email"): 1,
        ("cancelled", "email"): 1,
        ("skipped", "sms"): 1,
    }
    assert messages[("failed", "sms")] == 0  # a known series reads 0, not absent
    assert replies == {"unprocessed": 2, "confirm": 2, "crisis": 1}

    registry = CollectorRegistry()
    registry.register(DatabaseCollector(session_factory, clock=lambda: NOW))
    body = generate_latest(registry).decode()
    assert 'reminders_messages{channel="sms",status="planned"} 2.0' in body
    assert 'reminders_messages{channel="sms",status="sent"} 2.0' in body
    assert 'reminders_messages{channel="email",status="failed"} 0.0' in body
    assert 'reminders_replies{class="unprocessed"} 2.0' in body
    assert 'reminders_replies{class="confirm"} 2.0' in body
    assert "due in the last 24 h" in body  # the HELP text says what the gauge means


def test_scrapes_within_the_ttl_read_the_database_once(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as db:
        small_outbox(db)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    tick = [0.0]
    collector = DatabaseCollector(
        session_factory, ttl=30, clock=lambda: NOW, monotonic=lambda: tick[0]
    )
    registry = CollectorRegistry()
    registry.register(collector)  # describe(): registering reads nothing
    assert statements == []
    first = collector.samples()
    reads = len(statements)
    assert first is not None and reads > 0
    with session_factory() as db:
        db.execute(insert(Message), [message("p9", "planned", "sms", NOW)])
        db.commit()
    statements.clear()
    tick[0] = 29.0
    assert collector.samples() == first and statements == []  # cached
    tick[0] = 31.0
    again = collector.samples()
    assert again is not None and again[0][("planned", "sms")] == 3
    assert len(statements) == reads


def test_a_scrape_without_the_database_leaves_the_gauges_out() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        collector = DatabaseCollector(make_session_factory(engine))
        assert list(collector.collect()) == []
        registry = CollectorRegistry()
        registry.register(collector)
        assert "reminders_messages{" not in generate_latest(registry).decode()
    finally:
        engine.dispose()


OLD_ROWS = 50_000


def fill_history(db: Session) -> None:
    """50,000 final messages and 50,000 processed replies, all older than the window, then a
    few live and recent ones; ANALYZE, so the planner knows the tables' sizes."""
    db.execute(
        text(
            """
            INSERT INTO messages (dedupe_key, rule, kind, channel, template, due_at, status,
                                  attempts, data, created_at, updated_at)
            SELECT 'old-' || g, 'r', 'reminder', CASE WHEN g % 3 = 0 THEN 'email' ELSE 'sms' END,
                   't', :start + g * interval '1 minute',
                   (ARRAY['sent', 'delivered', 'failed', 'cancelled', 'skipped'])[1 + g % 5],
                   1, '{}', :start, :start
            FROM generate_series(1, :n) AS g
            """
        ),
        {"start": NOW - timedelta(days=60), "n": OLD_ROWS},
    )
    db.execute(
        text(
            """
            INSERT INTO inbound_messages (channel, provider_message_id, from_address, body,
                                          received_at, classification, processed_at)
            SELECT 'sms', 'old-' || g, '+14105550100', 'ok', :start + g * interval '1 minute',
                   (ARRAY['confirm', 'checkin', 'free_text'])[1 + g % 3],
                   :start + g * interval '1 minute'
            FROM generate_series(1, :n) AS g
            """
        ),
        {"start": NOW - timedelta(days=60), "n": OLD_ROWS},
    )
    db.commit()
    small_outbox(db)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_scrape_reads_indexes_not_the_whole_tables(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as db:
        fill_history(db)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE messages")
        conn.exec_driver_sql("ANALYZE inbound_messages")

    executed: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        executed.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    collector = DatabaseCollector(session_factory, clock=lambda: NOW)
    samples = collector.samples()
    event.remove(engine, "before_cursor_execute", record)
    assert samples is not None
    messages, replies = samples
    # The 50,000 old rows are history: the figures are those of the small outbox.
    assert messages[("planned", "sms")] == 2 and messages[("sent", "sms")] == 2
    assert sum(messages.values()) == 9
    assert replies == {"unprocessed": 2, "confirm": 2, "crisis": 1}

    queries = [(s, p) for s, p in executed if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 5  # live, final; unprocessed, window start, recent replies
    plans: list[str] = []
    with engine.connect() as conn:
        for statement, parameters in queries:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plan = "\n".join(r[0] for r in rows)
            plans.append(plan)
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"
    joined = "\n".join(plans)
    assert "ix_messages_due" in joined and "ix_inbound_unprocessed" in joined
    assert "Index Scan Backward using pk_inbound_messages" in joined


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_reads_the_outbox_through_its_index(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """SQLite's plans do not depend on the table's size: the outbox queries search
    ix_messages_due, the unprocessed count the partial index. (The window start walks the
    rowids backwards and stops at the first row before the window, which SQLite's plan shows
    as a SCAN with no way to tell it stops early; it is not checked here.)"""
    with session_factory() as db:
        small_outbox(db)
    executed: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        executed.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    assert DatabaseCollector(session_factory, clock=lambda: NOW).samples() is not None
    event.remove(engine, "before_cursor_execute", record)
    checked = [
        (s, p)
        for s, p in executed
        if "FROM messages" in s or "processed_at IS NULL" in s  # not the window start
    ]
    assert len(checked) == 3
    with engine.connect() as conn:
        for statement, parameters in checked:
            plan = " | ".join(
                str(r[-1])
                for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            assert "USING INDEX ix_messages_due" in plan or "ix_inbound_unprocessed" in plan, plan
            # A table SCAN without an index reads the whole table; one USING an index reads the
            # index (the partial index holds only the unprocessed rows).
            assert not re.search(r"SCAN (messages|inbound_messages)(?! USING)", plan), plan
