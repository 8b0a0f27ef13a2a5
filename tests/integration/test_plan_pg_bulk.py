"""The planner's batched outbox writes (reminders/outbox/bulk.py) on both databases: planning
twice inserts nothing new, the inserted count is the rows added, what is stored reads back as
what the planner produced (in the same form as the ORM's own inserts), re-plans move, cancel
and revive in batches under the same conditions as before, and on PostgreSQL two planners at
once insert nothing twice."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from reminders.clinic.changes import mark_patients_dirty
from reminders.db.models import Location, Message, Patient, TreatmentSession, WorkerState
from reminders.defaults import POLICY_FILE
from reminders.outbox import bulk, store
from reminders.planning.plan_pass import POLICY_KEY, plan_pass
from reminders.planning.planner import PlanMemo, PlannedMessage, SessionFacts, plan_patient
from reminders.planning.policy import Offset, Policy, load_policy

NOW = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # the US daylight-saving change is 6 days later
NY = ZoneInfo("America/New_York")
POLICY = load_policy(POLICY_FILE)
PATIENTS = 14


def seed(db: Session, patients: int = PATIENTS) -> None:
    """Upcoming infusions in several zones (some across the DST change), a cancelled one, and
    patients whose initial series is complete with nothing booked (maintenance nudges: rows
    without a session)."""
    db.add(WorkerState(key=POLICY_KEY, value=POLICY.fingerprint()))
    db.add(Location(id="west", name="West", timezone="America/Los_Angeles"))
    db.add(Location(id="east", name="East", timezone="America/New_York"))
    db.flush()
    for i in range(patients):
        pid = f"p{i:03d}"
        lapsed = i % 5 == 4
        db.add(
            Patient(
                id=pid,
                first_name="P",
                timezone="America/Phoenix" if i % 3 == 0 else None,
                initial_series_size=2 if lapsed else 6,
            )
        )
        db.flush()
        for n in range(3):
            if lapsed:
                # Completed up to 10 days ago: the nudges are still ahead.
                starts, status = NOW - timedelta(days=16 - 3 * n, hours=i % 4), "completed"
            else:
                starts = NOW + timedelta(days=1 + 3 * n, hours=i % 9, minutes=15 * (i % 4))
                status = "cancelled" if (i, n) == (1, 2) else "scheduled"
            db.add(
                TreatmentSession(
                    id=f"s{i:03d}-{n}",
                    patient_id=pid,
                    starts_at=starts,
                    status=status,
                    location_id="west" if i % 2 else "east",
                )
            )
    db.commit()


def expected_plan(db: Session, policy: Policy = POLICY) -> dict[str, PlannedMessage]:
    """What the planner produces for every patient (no memo), less what is already stale."""
    locations: dict[str, str | None] = {
        loc_id: tz for loc_id, tz in db.execute(select(Location.id, Location.timezone))
    }
    planned: dict[str, PlannedMessage] = {}
    for patient in db.scalars(select(Patient).order_by(Patient.id)):
        sessions = [
            SessionFacts(
                s.id,
                s.patient_id,
                s.starts_at,
                s.duration_minutes,
                s.kind,
                s.status,
                s.phase,
                s.series_number,
                s.location_id,
            )
            for s in db.scalars(
                select(TreatmentSession).where(TreatmentSession.patient_id == patient.id)
            )
        ]
        for pm in plan_patient(
            patient=patient,
            sessions=sessions,
            location_zones=locations,
            policy=policy,
            default_tz=NY,
            now=NOW,
        ):
            if pm.not_after is None or pm.not_after > NOW:
                planned[pm.dedupe_key] = pm
    return planned


@dataclass(frozen=True)
class Snapshot:
    """A row's values at one moment (ORM objects are refreshed in place)."""

    due_at: datetime
    not_after: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, m: Message) -> Snapshot:
        return cls(m.due_at, m.not_after, m.updated_at)


def reschedule(db: Session, session_id: str, by: timedelta) -> None:
    session = db.get(TreatmentSession, session_id)
    assert session is not None
    session.starts_at += by
    db.flush()


def outbox(db: Session) -> dict[str, Message]:
    db.expire_all()
    return {m.dedupe_key: m for m in db.scalars(select(Message))}


def count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Message)) or 0)


def test_planning_twice_inserts_nothing_new_and_counts_what_it_adds(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as db:
        seed(db)
        expected = expected_plan(db)
        assert any(pm.session_id is None for pm in expected.values())  # nudges too
        # Small batches: several INSERT statements, each its own transaction.
        first = plan_pass(db, policy=POLICY, default_tz=NY, now=NOW, batch_size=4)
        assert first.patients == PATIENTS
        assert first.inserted == count(db) == len(expected) > 0
        again = plan_pass(db, policy=POLICY, default_tz=NY, now=NOW)
        assert (again.patients, again.inserted) == (0, 0)  # incremental: nobody is marked
        mark_patients_dirty(db, [f"p{i:03d}" for i in range(PATIENTS)])
        db.commit()
        forced = plan_pass(db, policy=POLICY, default_tz=NY, now=NOW, batch_size=5)
        assert forced.patients == PATIENTS
        assert (forced.inserted, forced.updated, forced.cancelled, forced.revived) == (0, 0, 0, 0)
        assert count(db) == len(expected)


def test_stored_values_read_back_as_the_planner_produced_them(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as db:
        seed(db)
        expected = expected_plan(db)
        before = datetime.now(UTC)
        plan_pass(db, policy=POLICY, default_tz=NY, now=NOW, batch_size=4)
        rows = outbox(db)
        assert set(rows) == set(expected)
        for key, pm in expected.items():
            row = rows[key]
            assert (row.patient_id, row.session_id, row.rule, row.kind) == (
                pm.patient_id,
                pm.session_id,
                pm.rule,
                pm.kind,
            )
            assert (row.channel, row.template, row.status, row.attempts) == (
                pm.channel,
                pm.template,
                "planned",
                0,
            )
            assert row.due_at == pm.due_at and row.due_at.tzinfo is UTC
            assert row.not_after == pm.not_after
            assert row.session_starts_at == pm.session_starts_at
            assert row.data == pm.data
            assert row.created_at == row.updated_at and row.created_at >= before
            assert row.created_at.tzinfo is UTC
            assert row.reason is None and row.lease_owner is None


def test_stored_form_is_the_orms(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    """Raw column values (as the database returns them) of a planned row are those of the same
    row inserted through the ORM-typed path (store.insert_ignore), on each backend."""
    with session_factory() as db:
        seed(db, 2)
        plan_pass(db, policy=POLICY, default_tz=NY, now=NOW)
        planned = outbox(db)
        key = next(k for k, m in planned.items() if m.data and m.session_id)
        source = planned[key]
        columns = [
            "patient_id",
            "session_id",
            "session_starts_at",
            "rule",
            "kind",
            "channel",
            "template",
            "due_at",
            "not_after",
            "status",
            "attempts",
            "data",
            "created_at",
            "updated_at",
        ]
        values = {c: getattr(source, c) for c in columns}
        store.insert_ignore(db, [{**values, "dedupe_key": "orm-path"}])
        db.commit()
    raw = ", ".join("CAST(data AS TEXT)" if c == "data" else c for c in columns)
    select_raw = f"SELECT {raw} FROM messages WHERE dedupe_key = :k"
    with engine.connect() as conn:
        raw_planned = conn.execute(text(select_raw), {"k": key}).one()
        raw_orm = conn.execute(text(select_raw), {"k": "orm-path"}).one()
    assert tuple(raw_planned) == tuple(raw_orm)


def lapsed_nudges() -> list[PlannedMessage]:
    """Rows with no session at all (every session_id and session_starts_at None)."""
    patient = SimpleNamespace(
        id="p004", timezone=None, initial_series_size=2, maintenance_interval_days=28
    )
    sessions = [
        SessionFacts(
            f"s004-{n}", "p004", NOW - timedelta(days=16 - 3 * n), 60, "infusion", "completed"
        )
        for n in range(3)
    ]
    planned = plan_patient(
        patient=patient,
        sessions=sessions,
        location_zones={},
        policy=POLICY,
        default_tz=NY,
        now=NOW,
    )
    return [pm for pm in planned if pm.kind == "nudge"]


class EagerMemo(PlanMemo):
    """Probes often and rests briefly, so a short test goes through every state."""

    PROBE = 6
    REST = 5


def test_the_plan_memo_changes_nothing() -> None:
    """Sessions drawn from a small booking grid (few start times, two durations, every status,
    two kinds, several zones, across the DST change), so many share all but one of the memo's
    key fields: the same plan with a memo (small, so it also starts afresh and steps aside) as
    without."""
    rng = random.Random(7)
    # 19:00, 22:45 (in London a 90-minute session ends the next day, a 60-minute one does not)
    # and 09:00 UTC.
    slots = [
        NOW + timedelta(days=d, minutes=m) for d in (-9, -2, 1, 5, 6, 12) for m in (0, 225, 840)
    ]
    policy = POLICY.model_copy(deep=True)  # one rule for the initial series only
    policy.rules[1].sessions.phase = "initial"
    statuses = ["scheduled", "confirmed", "completed", "no_show", "cancelled"]
    locations = {"east": "America/New_York", "west": "America/Los_Angeles"}
    memos = [PlanMemo(policy), PlanMemo(policy, max_entries=3), EagerMemo(policy)]
    for n in range(80):
        patient = SimpleNamespace(
            id=f"p{n}",
            timezone=rng.choice([None, None, "America/Phoenix", "Europe/London"]),
            initial_series_size=rng.choice([1, 2, 6]),
            maintenance_interval_days=28,
        )
        sessions = [
            SessionFacts(
                f"s{n}-{k}",
                patient.id,
                rng.choice(slots),
                rng.choice([60, 90]),
                rng.choice(["infusion", "infusion", "consultation"]),
                rng.choice(statuses),
                phase=rng.choice([None, None, "initial", "maintenance"]),
                location_id=rng.choice(["east", "west"]),
            )
            for k in range(5)
        ]
        arguments: dict[str, Any] = {
            "patient": patient,
            "sessions": sessions,
            "location_zones": locations,
            "policy": policy,
            "default_tz": NY,
            "now": NOW,
        }
        plain = plan_patient(**arguments)
        for memo in memos:
            assert plan_patient(**arguments, memo=memo) == plain
    assert memos[0]._hits > 20  # the grid repeats: the memo was used, not only filled


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_bulk_insert_counts_only_new_keys(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as db:
        seed(db, 6)
        rows = list(expected_plan(db).values())
        stamp = datetime.now(UTC)
        half = rows[: len(rows) // 2]
        assert bulk.insert_planned_postgres(db, half, stamp) == len(half)
        db.commit()
        assert bulk.insert_planned_postgres(db, rows, stamp) == len(rows) - len(half)
        assert bulk.insert_planned_postgres(db, rows, stamp) == 0
        assert bulk.insert_planned_postgres(db, [], stamp) == 0
        db.commit()
        assert count(db) == len(rows)
        nudges = lapsed_nudges()
        assert nudges and all(pm.session_id is None for pm in nudges)
        db.execute(text("DELETE FROM messages WHERE session_id IS NULL"))
        assert bulk.insert_planned_postgres(db, nudges, stamp) == len(nudges)
        db.commit()
        assert count(db) == len(rows)
        with pytest.raises(ValueError, match="naive"):
            bulk.insert_planned_postgres(db, rows[:1], stamp.replace(tzinfo=None))


def test_replanning_moves_cancels_and_revives_in_batches(
    session_factory: sessionmaker[Session],
) -> None:
    later_ride = POLICY.model_copy(deep=True)
    for rule in later_ride.rules:
        if rule.name == "infusion-ride-sms":
            rule.when = Offset(days=0, minutes=-180)
    with session_factory() as db:
        seed(db)
        plan_pass(db, policy=POLICY, default_tz=NY, now=NOW)
        rides = {k for k, m in outbox(db).items() if m.rule == "infusion-ride-sms"}
        held, sent = sorted(rides)[:2]
        # A dispatcher holds one (never moved under it); another already went out.
        db.execute(update(Message).where(Message.dedupe_key == held).values(lease_owner="w1"))
        db.execute(update(Message).where(Message.dedupe_key == sent).values(status="sent"))
        db.commit()
        before = {k: Snapshot.of(m) for k, m in outbox(db).items()}
        want = expected_plan(db, later_ride)
        # Quiet hours can put both versions of a late session's ride at the same time.
        changes = {k for k in rides if want[k].due_at != before[k].due_at}
        assert held in changes and len(changes) > len(rides) // 2

        moved = plan_pass(db, policy=later_ride, default_tz=NY, now=NOW, batch_size=3)
        # The sent one is no longer the planner's; the held one is counted, not changed.
        assert moved.updated == len(changes - {sent})
        assert (moved.inserted, moved.cancelled, moved.revived) == (0, 0, 0)
        after = outbox(db)
        for key in rides:
            if key in (held, sent) or key not in changes:
                assert after[key].due_at == before[key].due_at
                assert after[key].updated_at == before[key].updated_at
                continue
            assert after[key].due_at == want[key].due_at
            assert after[key].not_after == want[key].not_after
            assert after[key].data == want[key].data
            assert after[key].updated_at > before[key].updated_at

        # A reschedule cancels the session's messages; moving it back revives them.
        reschedule(db, "s002-1", timedelta(hours=1))
        mark_patients_dirty(db, ["p002"])
        db.commit()
        resched = plan_pass(db, policy=later_ride, default_tz=NY, now=NOW)
        assert (resched.inserted, resched.cancelled) == (4, 4)
        old = [
            m for m in outbox(db).values() if m.session_id == "s002-1" and m.status == "cancelled"
        ]
        assert len(old) == 4 and {m.reason for m in old} == {"rescheduled"}
        reschedule(db, "s002-1", timedelta(hours=-1))
        mark_patients_dirty(db, ["p002"])
        db.commit()
        back = plan_pass(db, policy=later_ride, default_tz=NY, now=NOW)
        assert (back.inserted, back.cancelled, back.revived) == (0, 4, 4)
        rows = outbox(db)
        for m in old:
            assert rows[m.dedupe_key].status == "planned" and rows[m.dedupe_key].reason is None
            assert rows[m.dedupe_key].due_at == want[m.dedupe_key].due_at


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_transactions_inserting_the_same_keys_insert_each_once(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as db:
        seed(db, 6)
        rows = list(expected_plan(db).values())
    stamp = datetime.now(UTC)
    first, second = session_factory(), session_factory()
    results: dict[str, Any] = {}
    try:
        assert bulk.insert_planned_postgres(first, rows, stamp) == len(rows)  # not committed

        def other() -> None:
            try:
                results["second"] = bulk.insert_planned_postgres(second, rows, stamp)
                second.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                results["error"] = exc

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the first transaction's keys
        first.commit()
        thread.join(timeout=30)
        assert not thread.is_alive() and "error" not in results, results
        assert results["second"] == 0
    finally:
        first.close()
        second.close()
    with session_factory() as db:
        assert count(db) == len(rows)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_planners_at_once_insert_nothing_twice(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as db:
        seed(db, 40)
        expected = expected_plan(db)
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            with session_factory() as db:
                barrier.wait(timeout=10)
                reports.append(plan_pass(db, policy=POLICY, default_tz=NY, now=NOW, batch_size=7))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(reports) == 2
    with session_factory() as db:
        total = count(db)
        duplicates = db.scalar(
            select(func.count()).select_from(
                select(Message.dedupe_key)
                .group_by(Message.dedupe_key)
                .having(func.count() > 1)
                .subquery()
            )
        )
        still_dirty = db.scalar(select(func.count()).where(Patient.needs_plan.is_(True)))
    assert total == len(expected) == sum(r.inserted for r in reports)
    assert duplicates == 0 and still_dirty == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_bulk_plan_refreshes_the_outbox_statistics(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """Right after a first big plan the table has never been analyzed; without statistics a
    single-row update by id and status may walk the (status, due_at) index instead of the
    primary key (every later re-plan move and dispatch update)."""
    single_row = (
        "EXPLAIN UPDATE messages SET due_at = now() "
        "WHERE id = 1 AND status = 'planned' AND lease_owner IS NULL"
    )
    with session_factory() as db:
        seed(db, 100)
        report = plan_pass(db, policy=POLICY, default_tz=NY, now=NOW)
        assert report.inserted >= 1_000
        estimate = db.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'messages'"))
        assert estimate is not None and estimate >= report.inserted * 0.9
        plan = "\n".join(r[0] for r in db.execute(text(single_row)))
        assert "pk_messages" in plan, plan
        db.rollback()
