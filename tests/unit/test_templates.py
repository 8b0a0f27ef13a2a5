"""Templates without a database: context, formatting, validation, sandbox, shipped defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from reminders.db.models import Location, Patient, TreatmentSession
from reminders.settings import Settings, load_settings
from reminders.templates.check import check_source, check_template, sensitive_hits
from reminders.templates.context import (
    VARIABLES,
    build_context,
    format_clock,
    format_day,
    language_chain,
    sample_context,
)
from reminders.templates.render import _compile, render, render_for, render_source
from reminders.templates.sms import sms_info
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import file_templates, list_templates, resolve_template

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the sample session is then Tue 1 Dec 09:00

PATIENT_TEMPLATES = {
    ("prep_full", "email"),
    ("day_before", "sms"),
    ("day_before", "email"),
    ("ride_home", "sms"),
    ("checkin", "sms"),
    ("checkin", "email"),
    ("consultation_reminder", "sms"),
    ("consultation_reminder", "email"),
    ("maintenance_due", "sms"),
    ("maintenance_due", "email"),
}
STAFF_TEMPLATES = {("staff_alert", "sms"), ("staff_alert", "email")}
# Pass-through for automatic answers composed by reminders.conversations.
REPLY_TEMPLATES = {("reply_text", "sms"), ("reply_text", "email")}


@pytest.fixture(scope="module")
def cfg() -> Settings:
    return load_settings(
        _env_file=None,
        templates_dir=None,  # the built-in templates only
        timezone="America/New_York",
        public_url="http://testserver",
    )


def _patient(**kw: object) -> Patient:
    values: dict[str, object] = {
        "id": "p1",
        "first_name": "Ana",
        "language": "en",
        "timezone": None,
    }
    values.update(kw)
    return Patient(**values)


def _session(starts_at: datetime, **kw: object) -> TreatmentSession:
    values: dict[str, object] = {
        "id": "s1",
        "patient_id": "p1",
        "starts_at": starts_at,
        "kind": "infusion",
        "status": "scheduled",
        "series_number": None,
        "confirmed_at": None,
    }
    values.update(kw)
    return TreatmentSession(**values)


def _sms(body: str, cfg: Settings) -> TemplateSource:
    return TemplateSource(name="t", channel="sms", language="en", body=body)


# --- formatting ------------------------------------------------------------------------------


def test_babel_formats_english_and_spanish() -> None:
    moment = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert format_day(moment, "en") == "Tuesday, December 1"
    assert format_clock(moment, "en") == "9:00 AM"  # a plain space, not CLDR's U+202F
    assert format_day(moment, "es") == "martes, 1 de diciembre"
    assert format_clock(moment, "es") == "9:00"
    assert format_day(moment, "es-MX") == "martes, 1 de diciembre"
    assert format_day(moment, "xx") == "Tuesday, December 1"  # unknown language -> English


def test_context_uses_patient_then_location_then_clinic_zone(cfg: Settings) -> None:
    starts = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)
    madrid = Location(id="m", name="Madrid", address="", phone=None, timezone="Europe/Madrid")
    session = _session(starts)

    in_la = build_context(
        cfg, patient=_patient(timezone="America/Los_Angeles"), session=session, location=madrid
    )
    assert in_la["session"]["date"] == "Tuesday, December 1"
    assert in_la["session"]["time"] == "7:30 PM"

    at_location = build_context(cfg, patient=_patient(), session=session, location=madrid)
    assert at_location["session"]["date"] == "Wednesday, December 2"
    assert at_location["session"]["time"] == "4:30 AM"

    spanish = build_context(cfg, patient=_patient(language="es"), session=session, location=madrid)
    assert spanish["session"]["date"] == "miércoles 2 de diciembre"
    assert spanish["session"]["time"] == "4:30"

    clinic = build_context(cfg, patient=_patient(timezone="Not/AZone"), session=session)
    assert clinic["session"]["date"] == "Tuesday, December 1"
    assert clinic["session"]["time"] == "10:30 PM"


def test_context_across_daylight_saving_change(cfg: Settings) -> None:
    # US clocks spring forward on 8 March 2026 at 02:00 EST (07:00Z).
    before = build_context(
        cfg, patient=_patient(), session=_session(datetime(2026, 3, 8, 6, 30, tzinfo=UTC))
    )
    after = build_context(
        cfg, patient=_patient(), session=_session(datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    )
    assert before["session"]["time"] == "1:30 AM"
    assert after["session"]["time"] == "3:30 AM"


@hsettings(max_examples=60, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(
        [
            "America/New_York",
            "America/Los_Angeles",
            "Europe/Madrid",
            "Asia/Kolkata",
            "Pacific/Auckland",
        ]
    ),
)
def test_context_time_is_the_local_wall_clock(starts: datetime, zone: str) -> None:
    cfg = load_settings(_env_file=None, templates_dir=None)
    local = starts.astimezone(ZoneInfo(zone))
    context = build_context(
        cfg, patient=_patient(timezone=zone, language="es"), session=_session(starts)
    )
    assert context["session"]["time"] == f"{local.hour}:{local.minute:02d}"
    assert f" {local.day} de " in context["session"]["date"]


def test_context_without_session_or_location_still_has_every_variable(cfg: Settings) -> None:
    context = build_context(cfg, patient=_patient())
    for top, attrs in VARIABLES.items():
        assert top in context
        for attr in attrs or ():
            assert attr in context[top]
    assert context["session"]["date"] == ""
    assert context["location"]["name"] == ""
    assert context["session"]["confirmed"] is False
    assert context["alert"] == {"summary": "", "kind": "", "patient_id": "", "link": ""}
    assert context["reply"] == {"confirm": "C", "reschedule": "R"}
    # the day-before template still renders (no StrictUndefined error) without a session
    render(None, cfg, name="day_before", channel="sms", language="en", context=context)


def test_confirmed_session_and_series(cfg: Settings) -> None:
    confirmed = _session(NOW, status="confirmed", series_number=3)
    context = build_context(cfg, patient=_patient(initial_series_size=6), session=confirmed)
    assert context["session"]["confirmed"] is True
    assert (context["session"]["series_number"], context["session"]["series_size"]) == (3, 6)
    text = render(None, cfg, name="day_before", channel="sms", language="en", context=context).text
    assert "You're confirmed" in text
    assert "Reply C" not in text


# --- validation ------------------------------------------------------------------------------


def test_unknown_attribute_rejected_with_line_and_name(cfg: Settings) -> None:
    result = check_source(
        channel="sms",
        subject=None,
        body="Hi\nthere\n{{ patient.last_nam }}",
        html=None,
        settings=cfg,
    )
    assert len(result.errors) == 1
    assert "line 3" in result.errors[0]
    assert "patient.last_nam" in result.errors[0]


def test_unknown_variable_rejected_with_line(cfg: Settings) -> None:
    result = check_source(
        channel="email",
        subject="Hello {{ clinic.name }}",
        body="Hi {{ patient.first_name }},\n\n{{ diagnosis }}",
        html=None,
        settings=cfg,
    )
    assert result.errors == ["body line 3: unknown variable 'diagnosis'"]


def test_undefined_found_only_when_rendering_is_reported_with_line(cfg: Settings) -> None:
    # Not visible statically (an attribute of an attribute): StrictUndefined catches it.
    result = check_source(
        channel="sms",
        subject=None,
        body="a\n{{ session.date.weekday_name }}",
        html=None,
        settings=cfg,
    )
    assert len(result.errors) == 1
    assert "line 2" in result.errors[0]
    assert "weekday_name" in result.errors[0]


def test_render_raises_template_error_naming_template_and_line(cfg: Settings) -> None:
    source = TemplateSource(
        name="day_before", channel="sms", language="es", body="ok\n{{ patient.nope }}"
    )
    with pytest.raises(TemplateError) as info:
        render_source(source, sample_context(cfg))
    message = str(info.value)
    assert "day_before/sms/es" in message
    assert "line 2" in message
    assert "nope" in message


def test_syntax_error_reported_with_line(cfg: Settings) -> None:
    result = check_source(
        channel="sms",
        subject=None,
        body="Hi\n{{ patient.first_name }\nbye",
        html=None,
        settings=cfg,
    )
    assert len(result.errors) == 1
    assert result.errors[0].startswith("body line 2: syntax error")
    html = check_source(
        channel="email", subject="s", body="b", html="<p>\n\n{% if x %}</p>", settings=cfg
    )
    assert html.errors and html.errors[0].startswith("html line 3: syntax error")


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ patient.update({'first_name': 'x'}) }}",
    ],
)
def test_sandbox_refuses_escapes(cfg: Settings, body: str) -> None:
    result = check_source(channel="sms", subject=None, body=body, html=None, settings=cfg)
    assert result.errors, body
    with pytest.raises(TemplateError):
        render_source(_sms(body, cfg), sample_context(cfg))


def test_html_part_autoescapes_patient_name(cfg: Settings) -> None:
    context = build_context(cfg, patient=_patient(first_name="<script>alert(1)</script>"))
    explicit = TemplateSource(
        name="t",
        channel="email",
        language="en",
        subject="Hi {{ patient.first_name }}",
        body="Hi {{ patient.first_name }}",
        html="<p>Hi {{ patient.first_name }}</p>",
    )
    rendered = render_source(explicit, context)
    assert rendered.html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert rendered.text == "Hi <script>alert(1)</script>"  # plain text is not HTML

    generated = render_source(
        TemplateSource(
            name="t",
            channel="email",
            language="en",
            subject="s",
            body="Hi {{ patient.first_name }}",
        ),
        context,
    )
    assert generated.html is not None
    assert "<script>" not in generated.html
    assert "&lt;script&gt;" in generated.html


def test_subject_is_one_line(cfg: Settings) -> None:
    context = build_context(cfg, patient=_patient(first_name="Ana\r\nBcc: x@example.com"))
    source = TemplateSource(
        name="t", channel="email", language="en", subject="Hi {{ patient.first_name }}", body="b"
    )
    subject = render_source(source, context).subject
    assert subject is not None
    assert "\n" not in subject and "\r" not in subject


def test_sensitive_word_warnings(cfg: Settings) -> None:
    sms = check_source(
        channel="sms", subject=None, body="Your Ketamine visit is soon", html=None, settings=cfg
    )
    assert not sms.errors
    assert any("ketamine" in w for w in sms.warnings)

    subject = check_source(
        channel="email", subject="Your PTSD follow-up", body="b", html=None, settings=cfg
    )
    assert any("ptsd" in w for w in subject.warnings)

    body_only = check_source(
        channel="email", subject="Your visit", body="about ketamine", html=None, settings=cfg
    )
    assert body_only.warnings == []

    assert sensitive_hits("ketamine's effects", ["ketamine"]) == ["ketamine"]
    assert sensitive_hits("undepressed", ["depression"]) == []


def test_long_sms_warns_and_reports_segments(cfg: Settings) -> None:
    result = check_source(channel="sms", subject=None, body="a" * 400, html=None, settings=cfg)
    assert not result.errors
    assert result.sms == sms_info("a" * 400)
    assert any("3 SMS segments" in w for w in result.warnings)


def test_email_needs_subject_and_sms_has_none(cfg: Settings) -> None:
    assert check_source(channel="email", subject="", body="b", html=None, settings=cfg).errors
    assert check_source(channel="sms", subject="s", body="b", html=None, settings=cfg).errors


def test_compiled_templates_are_cached() -> None:
    source = "cache probe {{ patient.first_name }} 71d3"
    first = _compile(source, False)
    assert _compile(source, False) is first
    assert _compile(source, True) is not first  # the HTML environment autoescapes


def test_spanish_sms_is_sent_as_gsm7(cfg: Settings) -> None:
    context = sample_context(cfg, "es", now=NOW)
    text = render(None, cfg, name="day_before", channel="sms", language="es", context=context).text
    assert "mañana, martes 1 de diciembre, a las 9:00" in text
    assert "liquidos" in text  # "líquidos": í has no GSM-7 form, i does
    assert sms_info(text).encoding == "GSM-7"


# --- finding templates -----------------------------------------------------------------------


def test_language_fallback_from_files(cfg: Settings) -> None:
    assert language_chain("es_mx") == ["es-MX", "es", "en"]
    assert (
        resolve_template(None, cfg, name="checkin", channel="sms", language="es-MX").language
        == "es"
    )
    assert (
        resolve_template(None, cfg, name="checkin", channel="sms", language="fr").language == "en"
    )


def test_missing_template_everywhere(cfg: Settings) -> None:
    with pytest.raises(TemplateError, match="no template"):
        resolve_template(None, cfg, name="nope", channel="sms", language="es")
    with pytest.raises(TemplateError, match="no template"):
        resolve_template(None, cfg, name="prep_full", channel="sms", language="en")


def test_render_for_formats_dates_in_the_template_language(cfg: Settings) -> None:
    starts = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    french = render_for(
        None,
        cfg,
        name="ride_home",
        channel="sms",
        patient=_patient(language="fr"),
        session=_session(starts),
    )
    assert "9:00 AM" in french.text  # English template (fallback), so English time
    mexican = render_for(
        None,
        cfg,
        name="ride_home",
        channel="sms",
        patient=_patient(language="es-MX"),
        session=_session(starts),
    )
    assert "9:00 a.m." in mexican.text  # Spanish template, the patient's own locale


def test_file_changes_are_picked_up(tmp_path: Path) -> None:
    cfg = load_settings(_env_file=None, templates_dir=tmp_path)
    (tmp_path / "en").mkdir()
    path = tmp_path / "en" / "hello.sms.j2"
    path.write_text("one {{ clinic.name }}")
    context = sample_context(cfg)
    assert render(
        None, cfg, name="hello", channel="sms", language="en", context=context
    ).text.startswith("one")
    path.write_text("two {{ clinic.name }}")
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert render(
        None, cfg, name="hello", channel="sms", language="en", context=context
    ).text.startswith("two")


def test_incomplete_email_files_are_an_error(tmp_path: Path) -> None:
    cfg = load_settings(_env_file=None, templates_dir=tmp_path)
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "x.email.txt.j2").write_text("body")
    with pytest.raises(TemplateError, match="subject"):
        resolve_template(None, cfg, name="x", channel="email", language="en")


# --- the shipped defaults ---------------------------------------------------------------------


def _shipped(cfg: Settings) -> list[TemplateSource]:
    return file_templates(cfg)


def test_every_default_template_ships_in_english_and_spanish(cfg: Settings) -> None:
    keys = {(s.name, s.channel, s.language) for s in _shipped(cfg)}
    for name, channel in PATIENT_TEMPLATES | STAFF_TEMPLATES | REPLY_TEMPLATES:
        for language in ("en", "es"):
            assert (name, channel, language) in keys
    assert {(i.name, i.channel, i.language, i.source) for i in list_templates(None, cfg)} == {
        (*key, "built-in") for key in keys
    }


@pytest.mark.parametrize("confirmed", [False, True])
def test_every_default_template_passes_check(cfg: Settings, confirmed: bool) -> None:
    for source in _shipped(cfg):
        result = check_template(source, cfg)
        assert result.errors == [], source.id
        assert result.warnings == [], source.id
        context = sample_context(cfg, source.language, now=NOW, confirmed=confirmed)
        rendered = render_source(source, context)
        assert cfg.clinic_name in rendered.text, f"{source.id} does not name the clinic"
        if source.channel == "sms":
            info = sms_info(rendered.text)
            assert info.segments <= 2, (source.id, info)
            assert info.encoding == "GSM-7", source.id
            assert not sensitive_hits(rendered.text, cfg.sensitive_word_list), source.id
        else:
            assert rendered.subject and not sensitive_hits(
                rendered.subject, cfg.sensitive_word_list
            )
            has_unsubscribe = "/unsubscribe/SAMPLE-TOKEN" in rendered.text
            assert has_unsubscribe == ((source.name, source.channel) in PATIENT_TEMPLATES), (
                source.id
            )


def test_prep_email_has_the_preparation_content(cfg: Settings) -> None:
    context = sample_context(cfg, "en", now=NOW)
    rendered = render(None, cfg, name="prep_full", channel="email", language="en", context=context)
    # The sample is read at 08:00 the day before a 09:00 session: cut-offs as clock times.
    for needle in ("Nothing to eat after 3:00 AM.", "until 7:00 AM, then nothing to drink",
                   "No alcohol after 9:00 AM today.", "medications", "comfortable clothes",
                   "ride home", "do not drive until Wednesday", "tomorrow, Tuesday, December 1, at 9:00 AM",
                   "reply C"):  # fmt: skip
        assert needle in rendered.text, needle
    assert (
        rendered.html is not None
        and 'href="http://testserver/unsubscribe/SAMPLE-TOKEN"' in rendered.html
    )


def test_staff_alert_carries_only_the_summary(cfg: Settings) -> None:
    context = build_context(
        cfg,
        patient=None,
        alert={
            "summary": "Crisis language in a reply",
            "kind": "crisis",
            "patient_id": "p9",
            "link": "http://t/x",
        },
    )
    text = render(None, cfg, name="staff_alert", channel="sms", language="en", context=context).text
    assert text == f"{cfg.clinic_name} URGENT: Crisis language in a reply - patient p9. http://t/x"


def test_checkin_gives_crisis_line(cfg: Settings) -> None:
    for language in ("en", "es"):
        context = sample_context(cfg, language, now=NOW)
        text = render(
            None, cfg, name="checkin", channel="sms", language=language, context=context
        ).text
        assert "988" in text and "911" in text


def test_sample_session_is_tomorrow_at_nine(cfg: Settings) -> None:
    context = sample_context(cfg, now=NOW - timedelta(hours=10))  # 21:00 on 29 Nov in New York
    assert context["session"]["date"] == "Monday, November 30"
    assert context["session"]["time"] == "9:00 AM"
