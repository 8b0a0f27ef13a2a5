"""The late-preparation flag: a session whose patient could not be told a cut-off in time gets
one inbox item, as soon as that is known; one told in time gets none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from reminders.conversations.prep_flags import KIND, flag_key, flag_late_preparation, missed_cutoffs
from reminders.db.models import Message, Patient, StaffTask, TreatmentSession
from reminders.planning.prep import PREP_GRACE, CutoffTime
from reminders.runtime import Runtime
from reminders.worker import Worker, run_tick

NY = ZoneInfo("America/New_York")


def _book(rt: Runtime, session_id: str, starts_at: datetime, *, email: bool = True) -> None:
    with rt.session_factory() as db:
        patient = db.get(Patient, "p1")
        assert patient is not None
        patient.email_consent = email
        patient.needs_plan = True
        db.add(
            TreatmentSession(
                id=session_id,
                patient_id="p1",
                location_id="main",
                starts_at=starts_at,
                duration_minutes=60,
                kind="infusion",
                status="scheduled",
            )
        )
        db.commit()


def _flags(rt: Runtime) -> list[StaffTask]:
    with rt.session_factory() as db:
        return list(db.scalars(select(StaffTask).where(StaffTask.kind == KIND)))


def test_a_late_booking_is_flagged_on_the_first_pass_once(clinic: Runtime) -> None:
    # Booked at 04:00 for 13:00 the same day; SMS only, so the first reminder can go out at
    # 08:00 when quiet hours end: the alcohol cut-off (13:00 yesterday) has passed and the
    # fasting one (07:00) will have passed before any message reaches the patient.
    starts = datetime(2027, 3, 20, 13, 0, tzinfo=NY)
    _book(clinic, "late", starts, email=False)
    booked = datetime(2027, 3, 20, 4, 0, tzinfo=NY)
    run_tick(clinic, now=booked)
    flags = _flags(clinic)
    assert len(flags) == 1
    flag = flags[0]
    assert flag.session_id == "late" and flag.patient_id == "p1" and not flag.urgent
    assert flag.dedupe_key == flag_key("late", starts.astimezone(UTC))
    assert flag.summary.startswith("Booked after the alcohol cut-off and the fasting cut-off")
    assert "clear-liquids" not in flag.summary  # 11:00 is after the 08:00 text: told in time
    for later in (8, 11):
        run_tick(clinic, now=datetime(2027, 3, 20, later, 0, tzinfo=NY))
    assert len(_flags(clinic)) == 1
    with clinic.session_factory() as db:
        sms = db.scalars(
            select(Message).where(Message.session_id == "late", Message.status == "sent")
        ).all()
    assert sms, "the day-before SMS still goes out, saying what is true at 08:00"


def test_an_email_at_booking_time_tells_the_fasting_cut_off_in_time(clinic: Runtime) -> None:
    starts = datetime(2027, 3, 20, 13, 0, tzinfo=NY)
    _book(clinic, "late", starts, email=True)
    run_tick(clinic, now=datetime(2027, 3, 20, 4, 0, tzinfo=NY))
    (flag,) = _flags(clinic)
    assert flag.summary.startswith("Booked after the alcohol cut-off:")
    assert "fasting" not in flag.summary


def test_a_session_booked_days_ahead_is_never_flagged(clinic: Runtime) -> None:
    starts = datetime(2027, 3, 20, 9, 0, tzinfo=NY)
    _book(clinic, "early", starts, email=False)
    # The day-before SMS at 09:00 falls on the 24-hour alcohol cut-off: within the grace.
    for moment in (
        datetime(2027, 3, 12, 10, 0, tzinfo=NY),
        datetime(2027, 3, 19, 9, 0, 20, tzinfo=NY),
        datetime(2027, 3, 20, 7, 0, tzinfo=NY),
        datetime(2027, 3, 20, 8, 59, tzinfo=NY),
    ):
        run_tick(clinic, now=moment)
    assert _flags(clinic) == []


def test_an_acknowledged_flag_is_not_raised_again_but_a_new_time_is(clinic: Runtime) -> None:
    starts = datetime(2027, 3, 20, 13, 0, tzinfo=NY)
    _book(clinic, "late", starts, email=False)
    booked = datetime(2027, 3, 20, 4, 0, tzinfo=NY)
    run_tick(clinic, now=booked)
    with clinic.session_factory() as db:
        flag = db.scalars(select(StaffTask).where(StaffTask.kind == KIND)).one()
        flag.acknowledged_at = booked
        flag.acknowledged_by = "desk@example.com"
        db.commit()
        assert (
            flag_late_preparation(db, clinic.settings, clinic.policy, booked + timedelta(minutes=5))
            == 0
        )
    assert len(_flags(clinic)) == 1
    # Moved to 14:00: a new start time is a new session for the patient's preparation.
    with clinic.session_factory() as db:
        session = db.get(TreatmentSession, "late")
        patient = db.get(Patient, "p1")
        assert session is not None and patient is not None
        session.starts_at = starts + timedelta(hours=1)
        patient.needs_plan = True
        db.commit()
    run_tick(clinic, now=booked + timedelta(minutes=10))
    assert len(_flags(clinic)) == 2


def test_missed_cutoffs_counts_the_first_reminder_and_the_grace() -> None:
    cut = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    cutoffs = (CutoffTime("alcohol", cut),)
    before, now = cut - timedelta(hours=1), cut - timedelta(hours=2)
    assert missed_cutoffs(cutoffs, [before], now) == []
    assert missed_cutoffs(cutoffs, [cut + PREP_GRACE], now) == []  # "from now on"
    assert missed_cutoffs(cutoffs, [cut + PREP_GRACE + timedelta(seconds=1)], now) == list(cutoffs)
    # Nothing planned: only a cut-off already past is known missed.
    assert missed_cutoffs(cutoffs, [], now) == []
    assert missed_cutoffs(cutoffs, [], cut + PREP_GRACE) == list(cutoffs)


def test_a_cut_off_missed_later_is_added_to_the_open_flag(clinic: Runtime) -> None:
    starts = datetime(2027, 3, 20, 13, 0, tzinfo=NY)
    _book(clinic, "late", starts, email=False)
    run_tick(clinic, now=datetime(2027, 3, 20, 4, 0, tzinfo=NY))
    (flag,) = _flags(clinic)
    assert "clear-liquids" not in flag.summary
    # Every SMS to the patient fails (say the number stopped working): nothing reaches them.
    with clinic.session_factory() as db:
        for message in db.scalars(select(Message).where(Message.session_id == "late")):
            message.status, message.reason = "failed", "provider_rejected: 21211"
        db.commit()
        at = datetime(2027, 3, 20, 11, 20, tzinfo=NY)  # clear liquids ended at 11:00
        assert flag_late_preparation(db, clinic.settings, clinic.policy, at) == 0  # no second flag
    (flag,) = _flags(clinic)
    assert "and the clear-liquids cut-off" in flag.summary
    assert "clear-liquids cut-off Saturday, March 20 at 11:00 AM" in flag.summary


def test_the_daemons_plan_job_flags_a_late_booking_at_once(clinic: Runtime) -> None:
    _book(clinic, "late", datetime(2027, 3, 20, 13, 0, tzinfo=NY), email=False)
    booked = datetime(2027, 3, 20, 4, 0, tzinfo=NY)
    worker = Worker(clinic, clock=lambda: booked)
    try:
        report = worker.plan_and_flag_step(booked)
        assert report.inserted and len(_flags(clinic)) == 1
        # Nothing new planned: the plan job leaves the check to its own minute-by-minute job.
        assert not worker.plan_and_flag_step(booked).inserted
        assert worker.prep_step(booked) == 0 and len(_flags(clinic)) == 1
    finally:
        worker.close()
