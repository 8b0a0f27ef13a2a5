"""What one render may cost: a template can never take more than a bounded share of a worker.

A staff-edited template runs in Jinja's sandbox, which stops it reaching what it should not,
but not from asking for a lot: ``{{ 'x' * 10**10 }}`` or a loop in a loop in a loop. Here
every way a template can make work is metered:

- size: no value over :data:`MAX_VALUE` characters (string and list repetition, ``**``,
  ``%`` and ``str.format`` widths, ``ljust``/``center``/``zfill`` and the other methods of
  the built-in types, the allocating filters), no output over :data:`MAX_OUTPUT`;
- steps: ``range()`` up to :data:`MAX_RANGE` items, :data:`MAX_LOOP_STEPS` loop steps in
  all, calls (macros) nested :data:`MAX_NESTING` deep;
- time: a budget per render (:data:`RENDER_S` in the worker, :data:`PREVIEW_S` for a
  console preview), checked inline, between output chunks and in every metered operation
  (attribute, item, call, filter, operator, loop step): Python code cannot be stopped from
  outside, so a loop that outputs nothing is stopped by its own steps.

Going over any of them raises :class:`LimitError`, whose message names the limit; the
renderer reports it as a template error (the checker refuses the template, the dispatcher
fails that message, the preview shows it).
"""

from __future__ import annotations

import re
import string
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper, wraps
from typing import Any

from jinja2 import Template, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

KB = 1024
# Characters one part of a template (subject, body, HTML) may output, and its source may
# have: far above any real message (an SMS is a few hundred characters, an email a few KB).
MAX_OUTPUT = MAX_SOURCE = 64 * KB
# Any one value a template makes (characters of a string, items of a list), and any width,
# count or length it passes to a built-in method: no message needs more than its output.
MAX_VALUE = MAX_OUTPUT
MAX_RANGE = 1_000  # items of one range(): a message never lists more
MAX_LOOP_STEPS = 10_000  # loop steps in one render, all loops together
MAX_NESTING = 20  # calls within calls: a macro calling itself stops here
MAX_INT_BITS = 16_384  # about 5,000 digits: Python will not even print more
RENDER_S = 0.5  # time for one message (every part) in the worker and the checker
PREVIEW_S = 1.0  # time for a whole console preview (the checks' renders and its own)


class LimitError(Exception):
    """A template went over one of the limits; the message says which."""


@dataclass
class Budget:
    """The allowance of the render in progress (per thread: see :func:`render_budget`)."""

    seconds: float
    deadline: float
    steps: int = 0
    depth: int = 0

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise LimitError(f"took longer than {self.seconds:g} s")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_LOOP_STEPS:
            raise LimitError(f"loops over {MAX_LOOP_STEPS:,} steps")
        self.tick()


_CURRENT: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def render_budget(seconds: float) -> Iterator[Budget]:
    """Meter the renders inside: ``seconds`` of time (or what is left of an enclosing
    budget, if less) and fresh step and nesting counts."""
    outer = _CURRENT.get()
    budget = Budget(seconds=seconds, deadline=time.perf_counter() + seconds)
    if outer is not None and outer.deadline < budget.deadline:
        budget.seconds, budget.deadline = outer.seconds, outer.deadline
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def _tick() -> None:
    budget = _CURRENT.get()
    if budget is not None:
        budget.tick()


def render_capped(template: Template, context: Mapping[str, Any]) -> str:
    """Render chunk by chunk, stopping as soon as the output passes :data:`MAX_OUTPUT` or
    the time is up."""
    out: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise LimitError(f"output over {MAX_OUTPUT // KB} KB")
        out.append(chunk)
        _tick()
    return "".join(out)


def size_of(value: Any, depth: int = 0) -> int:
    """Characters of a string, items of a collection (and, two levels down, theirs)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        n = len(value)
        if depth < 2 and n <= MAX_VALUE:
            items: Iterable[Any] = value.values() if isinstance(value, dict) else value
            n += sum(size_of(item, depth + 1) for item in items)
        return n
    return 1


def _need(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise LimitError(f"{what} makes a value over {MAX_VALUE // KB} KB")


def checked(value: Any, what: str = "an expression") -> Any:
    """``value`` (which ``what`` made), if it is not too big."""
    _need(size_of(value), what)
    return value


def _number(value: Any, what: str) -> None:
    if isinstance(value, int) and abs(value) > MAX_VALUE:
        raise LimitError(f"{what} over {MAX_VALUE:,}")


_PERCENT_RE = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(fmt: str, args: Any) -> None:
    """``fmt % args`` must not ask for a width or precision over the limit."""
    star = False
    for match in _PERCENT_RE.finditer(fmt):
        for number in match.groups():
            if number == "*":
                star = True
            elif number and (len(number) > 6 or int(number) > MAX_VALUE):
                raise LimitError(f"'%' width or precision over {MAX_VALUE:,}")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            _number(value, "'%' width or precision")


def _check_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """``fmt.format(...)`` must not ask for a width or precision over the limit."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # the call itself reports it
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        for number in re.findall(r"\d+", spec):
            if len(number) > 6 or int(number) > MAX_VALUE:
                raise LimitError(f"format() width or precision over {MAX_VALUE:,}")
        if "{" in spec:  # a nested field: the width comes from the arguments
            for value in (*args, *kwargs.values()):
                _number(value, "format() width or precision")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and isinstance(seq, str | bytes | list | tuple):
                _need(size_of(seq) * times, "'*'")
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitError(f"'*' makes a number over {MAX_INT_BITS:,} bits")
    elif operator == "**":
        ints = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
        if ints and (right > MAX_INT_BITS or abs(left).bit_length() * right > MAX_INT_BITS):
            raise LimitError(f"'**' makes a number over {MAX_INT_BITS:,} bits")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "to_bytes"})


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a method of a built-in value that would allocate too much (``'x'.ljust(10**9)``,
    ``(1).to_bytes(10**9)``, ``s.replace('', s)``); the arguments to call it with."""
    if not isinstance(obj, types.BuiltinMethodType | types.MethodType):
        return args
    owner = obj.__self__
    name = obj.__name__
    if isinstance(owner, str | bytes | int) and name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _number(value, f"{name}() width")
    if not isinstance(owner, str | bytes):
        return args
    if name == "join" and len(args) == 1:
        items = list(args[0])
        total = sum(len(item) if isinstance(item, str | bytes) else 1 for item in items)
        _need(total + len(owner) * max(len(items) - 1, 0), "join()")
        return (items,)
    if name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _need(_replaced_size(owner, args[0], args[1], count), "replace()")
    elif name == "expandtabs":
        width = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        if isinstance(width, int):
            _need(len(owner) + tabs * width, "expandtabs()")
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        _need(len(owner) * max(longest, 1), "translate()")
    return args


def _replaced_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    kind = type(text) if isinstance(text, bytes) else str
    if not (isinstance(old, kind) and isinstance(new, kind)):
        return len(text)
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _pre_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> Any:
    _number(width, "center() width")
    return value


def _pre_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> Any:
    _number(width, "indent() width")
    text = str(s)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _need(len(text) + (text.count("\n") + 1) * step, "indent()")
    return s


def _pre_wordwrap(
    s: Any, width: Any = 79, _b: Any = 1, wrap: Any = None, *_: Any, **kw: Any
) -> Any:
    text, wrap = str(s), kw.get("wrapstring", wrap)
    lines = len(text) // (width if isinstance(width, int) and width > 0 else 1) + 1
    _need(
        len(text) + (lines + text.count("\n")) * (len(wrap) if isinstance(wrap, str) else 1),
        "wordwrap()",
    )
    return s


def _pre_count(what: str) -> Callable[..., Any]:
    def check(value: Any, count: Any = None, *_: Any, **kwargs: Any) -> Any:
        count = kwargs.get("linecount", kwargs.get("slices", count))
        if isinstance(count, int) and count > MAX_RANGE:
            raise LimitError(f"{what}() over {MAX_RANGE:,} items")
        return value

    return check


def _pre_format(value: Any, *args: Any, **kwargs: Any) -> Any:
    _check_percent(str(value), kwargs or args)
    return value


def _pre_replace(s: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> Any:
    _need(_replaced_size(str(s), old, new, count), "replace()")
    return s


def _pre_join(value: Any, d: Any = "", attribute: Any = None, **kwargs: Any) -> Any:
    items = value if isinstance(value, str | list | tuple) else list(value)
    if kwargs.get("attribute", attribute) is None and not isinstance(items, str):
        total = sum(len(item) if isinstance(item, str) else 1 for item in items)
        sep = kwargs.get("d", d)
        _need(total + len(str(sep)) * max(len(items) - 1, 0), "join()")
    return items


def _pre_tojson(value: Any, indent: Any = None, **kwargs: Any) -> Any:
    indent = kwargs.get("indent", indent)
    width = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    if width > 16:
        raise LimitError("tojson() indent over 16")
    return value


def _pre_urlize(value: Any, *args: Any, **kwargs: Any) -> Any:
    text = str(value)
    extra = sum(len(v) for v in (*args, *kwargs.values()) if isinstance(v, str))
    _need(3 * len(text) + len(text.split()) * extra, "urlize()")
    return value


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "batch": _pre_count("batch"),
    "slice": _pre_count("slice"),
    "format": _pre_format,
    "replace": _pre_replace,
    "join": _pre_join,
    "tojson": _pre_tojson,
    "urlize": _pre_urlize,
}


def _limit_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    check = _FILTER_CHECKS.get(name)
    skip = 0 if getattr(func, "jinja_pass_arg", None) is None else 1  # context/environment

    @wraps(func)  # keeps jinja_pass_arg, so Jinja passes what the filter expects
    def limited(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if check is not None and len(args) > skip:
            value = check(*args[skip:], **kwargs)
            args = (*args[:skip], value, *args[skip + 1 :])
        return checked(func(*args, **kwargs), f"the {name} filter")

    return limited


def limited_range(*args: int) -> range:
    rng = range(*args)
    try:
        too_many = len(rng) > MAX_RANGE
    except OverflowError:
        too_many = True
    if too_many:
        raise LimitError(f"range() over {MAX_RANGE:,} items")
    return rng


def limited_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    if n > 20 or min > 200 or max > 200:
        raise LimitError("lipsum() over 20 paragraphs of 200 words")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


def _env_call(name: str, arg: nodes.Node) -> nodes.Call:
    return nodes.Call(
        nodes.EnvironmentAttribute(name, lineno=arg.lineno),
        [arg],
        [],
        None,
        None,
        lineno=arg.lineno,
    )


class _Meter(NodeTransformer):
    """Every loop's iterable goes through ``loop_steps``, every ``~`` through ``checked_concat``."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _env_call("loop_steps", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _env_call("checked_concat", node)


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every way to make work metered (see the module)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = limited_range
        self.globals["lipsum"] = limited_lipsum
        self.filters = {name: _limit_filter(name, func) for name, func in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _Meter().visit(tree)
        return tree

    @staticmethod
    def checked_concat(value: Any) -> Any:
        return checked(value, "'~'")

    @staticmethod
    def loop_steps(iterable: Iterable[Any]) -> Iterator[Any]:
        budget = _CURRENT.get()
        for item in iterable:
            if budget is not None:
                budget.step()
            yield item

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return checked(super().call_binop(context, operator, left, right), f"'{operator}'")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: str | Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"

        def limited(*args: Any, **kwargs: Any) -> str:
            _tick()
            if is_map and len(args) == 1 and isinstance(args[0], Mapping):
                _check_format(fmt, (), args[0])
            else:
                _check_format(fmt, args, kwargs)
            return checked(wrapper(*args, **kwargs), "format()")  # type: ignore[no-any-return]

        return update_wrapper(limited, value)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _CURRENT.get()
        if budget is not None:
            budget.tick()
            if budget.depth >= MAX_NESTING:
                raise LimitError(f"calls nested over {MAX_NESTING} deep")
            budget.depth += 1
        try:
            args = _check_method(obj, args, kwargs)
            result = super().call(context, obj, *args, **kwargs)
            return checked(result, f"{getattr(obj, '__name__', 'a call')}()")
        finally:
            if budget is not None:
                budget.depth -= 1


class RateGate:
    """At most ``limit`` admissions per ``window`` seconds per key, one at a time (in
    memory, per process): the console's live preview, per signed-in user."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._times: dict[str, deque[float]] = {}
        self._busy: set[str] = set()

    @contextmanager
    def admit(self, key: str) -> Iterator[bool]:
        now = time.monotonic()
        with self._lock:
            times = self._times.setdefault(key, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            ok = key not in self._busy and len(times) < self.limit
            if ok:
                times.append(now)
                self._busy.add(key)
            elif not times:
                del self._times[key]
        try:
            yield ok
        finally:
            if ok:
                with self._lock:
                    self._busy.discard(key)


_GATES_LOCK = threading.Lock()


def gate_on(holder: Any, limit: int, window: float) -> RateGate:
    """The :class:`RateGate` kept on ``holder`` (an app's state), made on first use."""
    with _GATES_LOCK:
        gate = getattr(holder, "preview_gate", None)
        if not isinstance(gate, RateGate):
            gate = RateGate(limit, window)
            holder.preview_gate = gate
        return gate
