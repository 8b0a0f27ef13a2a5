"""Template limits (reminders.templates.limits): every way a template could ask for a huge
value, endless loops or unbounded time is refused quickly, with an error naming the limit,
by the renderer (the dispatcher fails that message) and by the checker (no saving it);
real templates are untouched."""

from __future__ import annotations

import threading
import time

import pytest

from reminders.settings import Settings, load_settings
from reminders.templates.check import check_source, check_template
from reminders.templates.context import sample_context
from reminders.templates.limits import (
    MAX_LOOP_STEPS,
    MAX_OUTPUT,
    MAX_SOURCE,
    RateGate,
    render_budget,
)
from reminders.templates.render import render_source
from reminders.templates.source import TemplateError, TemplateSource
from reminders.templates.store import file_templates

# Far above the limits' own cost (they stop in milliseconds, or at the 0.5 s time budget),
# far below what any attack would take unchecked (seconds to hours, or gigabytes).
WALL_S = 3.0
BIG = "'x' * 60000"  # a legal value just under the limit

ATTACKS: dict[str, tuple[str, str]] = {
    # name: (template, what the error says)
    "repeat a string": ("{{ 'x' * 10000000000 }}", "'*' makes a value over 64 KB"),
    "repeat a list": (f"{{{{ ([{BIG}] * 1000)|join }}}}", "'*' makes a value over 64 KB"),
    "power": ("{{ 10 ** 1000000000 }}", "'**' makes a number over"),
    "squaring": ("{% set n = 10 %}" + "{% set n = n * n %}" * 40, "'*' makes a number over"),
    "ljust": ("{{ 'x'.ljust(1000000000) }}", "ljust() width over 65,536"),
    "center method": ("{{ 'x'.center(1000000000) }}", "center() width over"),
    "zfill": ("{{ '1'.zfill(1000000000) }}", "zfill() width over"),
    "to_bytes": ("{{ (1).to_bytes(1000000000, 'big') }}", "to_bytes() width over"),
    "format width": ("{{ '{:>1000000000}'.format('x') }}", "format() width or precision over"),
    "format nested": ("{{ '{:>{}}'.format('x', 1000000000) }}", "format() width or precision"),
    "format precision": ("{{ '{:.1000000000f}'.format(1.0) }}", "format() width or precision"),
    "percent width": ("{{ '%1000000000s' % 'x' }}", "'%' width or precision over"),
    "percent star": ("{{ '%*s' % (1000000000, 'x') }}", "'%' width or precision over"),
    "format filter": ("{{ '%1000000000s'|format('x') }}", "'%' width or precision over"),
    "center filter": ("{{ 'x'|center(1000000000) }}", "center() width over"),
    "indent width": ("{{ 'a\nb'|indent(1000000000) }}", "indent() width over"),
    "indent string": (
        "{% set s = 'a\n' * 30000 %}{{ s|indent('x' * 60000) }}",
        "indent() makes a value over 64 KB",
    ),
    "wordwrap": (
        "{% set s = 'ab ' * 20000 %}{{ s|wordwrap(1, wrapstring='x' * 60000) }}",
        "wordwrap() makes a value over",
    ),
    "batch": ("{% for b in range(3)|batch(1000000000, 'x') %}{% endfor %}", "batch() over 1,000"),
    "slice": ("{% for b in range(3)|slice(1000000000) %}{% endfor %}", "slice() over 1,000"),
    "replace method": (f"{{% set s = {BIG} %}}{{{{ s.replace('', s) }}}}", "replace() makes"),
    "replace filter": (f"{{% set s = {BIG} %}}{{{{ s|replace('', s) }}}}", "replace() makes"),
    "join method": (
        f"{{% set s = {BIG} %}}{{{{ s.join(range(1000)|map('string')) }}}}",
        "join() makes a value over",
    ),
    "join filter": (f"{{% set s = {BIG} %}}{{{{ range(1000)|join(s) }}}}", "join() makes"),
    "expandtabs": ("{% set s = '\t' * 60000 %}{{ s.expandtabs(60000) }}", "expandtabs() makes"),
    "translate": (f"{{% set s = {BIG} %}}{{{{ s.translate({{120: s}}) }}}}", "translate() makes"),
    "lipsum": ("{{ lipsum(1000000) }}", "lipsum() over"),
    "tojson indent": ("{{ range(10)|list|tojson(1000000000) }}", "tojson() indent over"),
    "doubling with ~": (
        "{% set s = 'xxxxxxxxxxxxxxxx' %}" + "{% set s = s ~ s %}" * 40,
        "'~' makes a value over 64 KB",
    ),
    "doubling with +": (
        "{% set s = 'xxxxxxxxxxxxxxxx' %}" + "{% set s = s + s %}" * 40,
        "'+' makes a value over 64 KB",
    ),
    "range": ("{% for a in range(10**9) %}{% endfor %}", "range() over 1,000 items"),
    "nested loops": (
        "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
        f"loops over {MAX_LOOP_STEPS:,} steps",
    ),
    "silent nested loops": (
        "{% set ns = namespace(n=0) %}{% for a in range(1000) %}{% for b in range(1000) %}"
        "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}",
        "loops over 10,000 steps",
    ),
    "loops over a list": (
        "{% set r = range(1000)|list %}{% for a in r %}{% for b in r %}{% for c in r %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "loops over 10,000 steps",
    ),
    "recursive macro": ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "nested over 20"),
    "branching macro": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
        "{% endmacro %}{{ f(18) }}",  # 3**18 calls, none nested over 20 deep
        "took longer than 0.5 s",
    ),
    "recursive loop": (
        "{% for i in range(1000) recursive %}{% if loop.depth < 5 %}{{ loop(range(1000)) }}"
        "{% endif %}{% endfor %}",
        "took longer than 0.5 s",
    ),
    "output": (f"{{% for i in range(1000) %}}{{{{ {BIG} }}}}{{% endfor %}}", "output over 64 KB"),
}


@pytest.fixture(scope="module")
def cfg() -> Settings:
    return load_settings(
        _env_file=None,
        templates_dir=None,
        timezone="America/New_York",
        public_url="http://testserver",
    )


def _email(body: str, html: str | None = None) -> TemplateSource:
    return TemplateSource(
        name="attack", channel="email", language="en", body=body, subject="Hi", html=html
    )


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_quickly_naming_the_limit(name: str, cfg: Settings) -> None:
    body, says = ATTACKS[name]
    start = time.perf_counter()
    with pytest.raises(TemplateError) as raised:
        render_source(_email(body), sample_context(cfg))
    took = time.perf_counter() - start
    assert took < WALL_S, f"{name}: {took:.2f} s"
    message = str(raised.value)
    assert "template attack/email/en" in message and "body" in message
    assert "template limit: " in message and says in message, message


@pytest.mark.parametrize("name", ["repeat a string", "format width", "nested loops", "output"])
def test_the_checker_refuses_to_save_it(name: str, cfg: Settings) -> None:
    body, says = ATTACKS[name]
    start = time.perf_counter()
    result = check_source(channel="sms", subject=None, body=body, html=None, settings=cfg)
    assert time.perf_counter() - start < WALL_S
    assert not result.ok
    assert any(m.startswith("body") and says in m for m in result.errors), result.errors


def test_the_html_part_is_limited_too(cfg: Settings) -> None:
    source = _email("Hi", html="<p>{{ ('<b>'|safe) * 100000000 }}</p>")
    with pytest.raises(TemplateError, match=r"html line 1: template limit: '\*' makes a value"):
        render_source(source, sample_context(cfg))


def test_source_over_the_limit_is_refused_before_parsing(cfg: Settings) -> None:
    body = "{{ patient.first_name }} " * (MAX_SOURCE // 10)
    result = check_source(channel="email", subject="Hi", body=body, html=None, settings=cfg)
    assert result.errors == ["body: template limit: over 64 KB of text"]
    with pytest.raises(TemplateError, match="source over 64 KB"):
        render_source(_email(body), sample_context(cfg))


def test_output_just_under_the_cap_renders(cfg: Settings) -> None:
    body = "{% for i in range(63) %}{{ 'x' * 1023 }}\n{% endfor %}"
    text = render_source(_email(body), sample_context(cfg)).text
    assert len(text) == 63 * 1024 - 1 < MAX_OUTPUT


def test_ordinary_template_features_still_work(cfg: Settings) -> None:
    body = (
        "Hi {{ patient.first_name }}|{{ 'x'.ljust(3) }}|{{ '{:>4}'.format('a') }}|"
        "{{ '%3s' % 'b' }}|{{ range(3)|join(',') }}|{{ ('ab' * 2)|center(6) }}|"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %}|{{ (2 ** 10) * 3 }}|"
        "{% macro m(n) %}<{{ n }}>{% endmacro %}{{ m(1) ~ m(2) }}|{{ 'a b c'|wordwrap(2) }}"
    )
    text = render_source(_email(body), sample_context(cfg)).text
    assert text == "Hi Alex|x  |   a|  b|0,1,2| abab |123|3072|<1><2>|a\nb\nc"


def test_every_default_template_passes_the_checks_and_renders(cfg: Settings) -> None:
    sources = file_templates(cfg)
    assert len(sources) > 20
    for source in sources:
        assert check_template(source, cfg).errors == [], source.id
        for confirmed in (False, True):
            context = sample_context(cfg, source.language, confirmed=confirmed)
            start = time.perf_counter()
            rendered = render_source(source, context)
            assert time.perf_counter() - start < 0.5
            assert rendered.text.strip(), source.id
            assert len(rendered.text) < MAX_OUTPUT


def test_an_enclosing_budget_bounds_the_renders_inside(cfg: Settings) -> None:
    body, _ = ATTACKS["branching macro"]
    start = time.perf_counter()
    with render_budget(0.2), pytest.raises(TemplateError, match="took longer than 0.2 s"):
        render_source(_email(body), sample_context(cfg))
    assert time.perf_counter() - start < 0.45


def test_rate_gate_admits_a_few_per_window_one_at_a_time() -> None:
    gate = RateGate(limit=3, window=0.3)
    with gate.admit("a") as first:
        assert first
        with gate.admit("a") as meanwhile, gate.admit("b") as other:
            assert not meanwhile and other  # one at a time per user, users apart
    for _ in range(2):
        with gate.admit("a") as ok:
            assert ok
    with gate.admit("a") as fourth:
        assert not fourth
    time.sleep(0.35)
    with gate.admit("a") as again:
        assert again


def test_budgets_are_per_thread(cfg: Settings) -> None:
    """A render on another thread is not charged to (or stopped by) this one's budget."""
    errors: list[str] = []

    def other() -> None:
        try:
            render_source(_email("Hi {{ patient.first_name }}"), sample_context(cfg))
        except TemplateError as exc:
            errors.append(str(exc))

    with render_budget(0.0):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors == []
