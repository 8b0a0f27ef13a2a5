"""Preparation as data (policy ``preparation``): validation that names the field, per-location
overrides, and cut-offs as instants for one session, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from reminders import defaults
from reminders.errors import PolicyError
from reminders.planning.policy import Policy, parse_policy
from reminders.planning.prep import (
    PREP_GRACE,
    DayTime,
    default_preparation,
    max_cutoff_lead,
    plan_preparation,
)
from reminders.settings import Settings
from reminders.templates.check import check_source, wording_warnings
from reminders.templates.context import session_label

NY = ZoneInfo("America/New_York")


def _policy(preparation: Any, **extra: Any) -> Policy:
    raw = yaml.safe_load((Path(defaults.__file__).parent / "policy.yaml").read_text())
    raw["preparation"] = preparation
    raw.update(extra)
    return parse_policy(raw)


def test_the_shipped_policy_spells_out_the_built_in_preparation() -> None:
    shipped = yaml.safe_load((Path(defaults.__file__).parent / "policy.yaml").read_text())
    assert parse_policy(shipped).preparation == default_preparation()
    del shipped["preparation"]  # an older policy file without the section gets the default
    assert parse_policy(shipped).preparation == default_preparation()
    infusion = default_preparation().for_session("infusion", None)
    assert infusion is not None
    assert (infusion.no_food, infusion.clear_liquids_until, infusion.no_alcohol) == (
        timedelta(hours=6),
        timedelta(hours=2),
        timedelta(hours=24),
    )
    assert infusion.ride_home and infusion.no_driving == "next_day"
    assert default_preparation().for_session("checkup", None) is None


@pytest.mark.parametrize(
    ("preparation", "message"),
    [
        (
            {"kinds": {"infusion": {"no_food": "2h", "clear_liquids_until": "3h"}}},
            "field 'preparation.kinds.infusion': clear_liquids_until must be closer to the "
            "session than no_food",
        ),
        (
            {"kinds": {"infusion": {"no_food": "six hours"}}},
            "field 'preparation.kinds.infusion.no_food': 'six hours' is not a duration before "
            "the session like '6h'",
        ),
        (
            {"kinds": {"infusion": {"no_alcohol": {"day": -1, "at": "25:00"}}}},
            "field 'preparation.kinds.infusion.no_alcohol.at': time of day '25:00'",
        ),
        (
            {"kinds": {"infusion": {"bring": [""]}}},
            "field 'preparation.kinds.infusion.bring.0': text must not be empty",
        ),
        (
            {"kinds": {"infusion": {"fasting": "6h"}}},
            "field 'preparation.kinds.infusion.fasting': Extra inputs are not permitted",
        ),
        (
            {
                "kinds": {"infusion": {"no_food": "6h"}},
                "locations": {"uptown": {"infusion": {"clear_liquids_until": "7h"}}},
            },
            "locations.uptown.infusion: clear_liquids_until must be closer",
        ),
        (
            {"kinds": {"infusion": {"no_driving": "tomorrow"}}},
            "'tomorrow' is not next_day, none, or a duration",
        ),
        (
            {"kinds": {"infusion": {"no_food": "9d"}}},
            "no_food: at most 7 days before the session",
        ),
    ],
)
def test_a_bad_preparation_is_refused_naming_the_field(preparation: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _policy(preparation)
    assert message in str(caught.value)


def test_a_location_overrides_only_the_fields_it_names() -> None:
    policy = _policy(
        {
            "kinds": {
                "infusion": {"no_food": "6h", "clear_liquids_until": "2h", "ride_home": True}
            },
            "locations": {
                "uptown": {"infusion": {"no_food": "8h"}},
                "east": {"consultation": {"bring": ["your insurance card"]}},
            },
        }
    )
    uptown = policy.preparation.for_session("infusion", "uptown")
    downtown = policy.preparation.for_session("infusion", "downtown")
    assert uptown is not None and downtown is not None
    assert (uptown.no_food, downtown.no_food) == (timedelta(hours=8), timedelta(hours=6))
    assert uptown.clear_liquids_until == timedelta(hours=2) and uptown.ride_home
    east = policy.preparation.for_session("consultation", "east")
    assert east is not None and east.bring == [{"*": "your insurance card"}]
    assert policy.preparation.for_session("consultation", None) is None
    assert max(max_cutoff_lead(p) for p in policy.preparation.all()) == timedelta(hours=8)


def test_cutoffs_are_instants_elapsed_or_local_across_daylight_saving() -> None:
    policy = _policy(
        {
            "kinds": {
                "infusion": {
                    "no_food": "6h",
                    "no_alcohol": "24h",
                    "hold": [{"item": "lorazepam", "before": {"day": -1, "at": "20:00"}}],
                    "arrive_early": "15m",
                    "ride_home": True,
                    "no_driving": "next_day",
                }
            }
        }
    )
    prep = policy.preparation.for_session("infusion", None)
    assert prep is not None
    # Sunday 2027-03-14 07:00 EDT, the day clocks spring forward at 02:00: six elapsed hours
    # before it is midnight EST, seven hours by the wall clock.
    start = datetime(2027, 3, 14, 7, 0, tzinfo=NY)
    plan = plan_preparation(prep, starts_at=start, duration_minutes=60, tz=NY)
    local = {c.what: c.at.astimezone(NY) for c in plan.cutoffs}
    assert local["food"].strftime("%d %H:%M %Z") == "14 00:00 EST"
    assert local["alcohol"].strftime("%d %H:%M %Z") == "13 06:00 EST"  # 24 elapsed hours
    assert local["hold"].strftime("%d %H:%M %Z") == "13 20:00 EST"  # a wall-clock time
    assert [c.what for c in plan.cutoffs] == ["alcohol", "hold", "food"]  # by time
    assert plan.arrive_by == start - timedelta(minutes=15)
    assert plan.drive_again == date(2027, 3, 15)
    assert plan.first_cutoff is not None and plan.first_cutoff.what == "alcohol"
    assert plan.passed(start - timedelta(hours=5)) == (
        plan.cutoffs[0],
        plan.cutoffs[1],
        plan.cutoffs[2],
    )


def test_a_local_cutoff_is_never_after_the_session_starts() -> None:
    prep = _policy({"kinds": {"infusion": {"no_food": {"day": 0, "at": "00:00"}}}})
    infusion = prep.preparation.for_session("infusion", None)
    assert infusion is not None and isinstance(infusion.no_food, DayTime)
    just_after_midnight = datetime(2027, 1, 5, 0, 20, tzinfo=NY)
    plan = plan_preparation(infusion, starts_at=just_after_midnight, duration_minutes=30, tz=NY)
    assert plan.cutoffs[0].at == datetime(2027, 1, 5, 0, 0, tzinfo=NY).astimezone(UTC)
    late = _policy({"kinds": {"infusion": {"no_food": {"day": 0, "at": "10:00"}}}})
    infusion = late.preparation.for_session("infusion", None)
    assert infusion is not None
    early_session = datetime(2027, 1, 5, 8, 0, tzinfo=NY)
    plan = plan_preparation(infusion, starts_at=early_session, duration_minutes=30, tz=NY)
    assert plan.cutoffs[0].at == early_session


def test_the_grace_is_short() -> None:
    # "From now on" only covers a send in the same quarter hour as its cut-off.
    assert timedelta(0) < PREP_GRACE <= timedelta(minutes=15)


def test_sms_calls_a_session_a_visit_unless_the_policy_opts_in() -> None:
    shy = _policy(default_preparation().model_dump())
    named = _policy(default_preparation().model_dump(), sms_names_treatment=True)
    assert session_label("infusion", "en", policy=shy, channel="sms") == "visit"
    assert session_label("infusion", "es", policy=shy, channel="sms") == "cita"
    assert session_label("infusion", "en", policy=named, channel="sms") == "infusion"
    assert session_label("infusion", "es", policy=shy, channel="email") == "infusión"
    assert session_label("consultation", "es-MX", policy=None, channel="email") == "consulta"
    assert session_label("follow_up", "en", policy=None, channel="email") == "follow up"


def test_the_checker_warns_about_literal_days_and_written_out_hours() -> None:
    warnings = wording_warnings(
        "body",
        "See you tomorrow at {{ session.time }}.\n"
        "Nada de comer 6 horas antes. Le esperamos a las 9 de la mañana.\n"
        "{{ session.when }} {% if x %}tomorrow{% endif %}",
    )
    assert warnings[0].startswith("body line 1: says 'tomorrow' literally")
    assert warnings[1].startswith("body line 2: '6 horas' is written out")
    assert len(warnings) == 3  # "de la mañana" is the morning; the third is line 3's text
    assert warnings[2].startswith("body line 3: says 'tomorrow'")
    result = check_source(
        channel="sms",
        subject=None,
        body="Hi {{ patient.first_name }}, see you mañana. {{ prep.summary }}",
        html=None,
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        language="es",
    )
    assert result.ok and any("'mañana' literally" in w for w in result.warnings)
