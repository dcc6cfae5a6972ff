"""Self-validating frozen shapes: fields declared once, with their checks.

A `Shape` subclass is a frozen slotted dataclass whose fields are annotated as
`Annotated[type, Check]`. Constructing one runs every check (so a body built by
our own builder and one decoded from a peer pass the same gate), and
`Shape.parse` accepts an untrusted map only with exactly the declared keys.
A failed check raises `TxError` with reason BENV and names the field.
"""

from __future__ import annotations

import datetime as dt
import re
import types
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

from consortium import limits
from consortium.errors import RemoteError
from consortium.ledger.codes import Code
from consortium.types import id_problem

INT_MAX = 2 ** (limits.codec_int_bits_max - 1) - 1  # a signed int the codec carries


class TxError(RemoteError):
    """A transaction that can never be valid (stateless): malformed, bad signature, PII, ..."""

    def __init__(self, reason: Code, detail: str = "") -> None:
        super().__init__(str(reason), detail)
        self.code = reason


def bad(where: str, problem: str) -> TxError:
    return TxError(Code.BENV, f"{where} {problem}")


#: A compiled check: (value, where) -> the value to store, or TxError.
Run = Callable[[Any, str], Any]


class Check:
    """Validates (and may normalise, e.g. list -> tuple) one field value."""

    def check(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def compile(self) -> Run:
        """`check` as one closure (what Shape runs per field): it accepts the plain valid
        values itself, with the check's parameters bound, and hands every other value to
        `check`, which alone decides it (so the result and every error are check's)."""
        return self.check


@dataclass(frozen=True, slots=True)
class Text(Check):
    max_len: int
    pattern: str | None = None
    min_len: int = 1

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, str):
            raise bad(where, "must be a string")
        if not self.min_len <= len(value) <= self.max_len:
            raise bad(where, f"must be {self.min_len}..{self.max_len} characters")
        if self.pattern is not None and not _compiled(self.pattern).fullmatch(value):
            raise bad(where, f"must match {self.pattern}")
        if _CONTROL.search(value):
            raise bad(where, "must not contain control characters")
        return value

    def compile(self) -> Run:
        lo, hi, slow, control = self.min_len, self.max_len, self.check, _CONTROL.search
        if self.pattern is None:
            def run(value: Any, where: str) -> Any:
                if type(value) is str and lo <= len(value) <= hi and not control(value):
                    return value
                return slow(value, where)
            return run
        matches = _compiled(self.pattern).fullmatch

        def run_pattern(value: Any, where: str) -> Any:
            if type(value) is str and lo <= len(value) <= hi and matches(value) and not control(value):
                return value
            return slow(value, where)
        return run_pattern


@dataclass(frozen=True, slots=True)
class Id(Check):
    """A member or party id (types.id_problem)."""

    def check(self, value: Any, where: str) -> Any:
        problem = id_problem(value)
        if problem is not None:
            raise bad(where, problem)
        return value

    def compile(self) -> Run:
        slow = self.check

        def run(value: Any, where: str) -> Any:
            if id_problem(value) is None:
                return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Date(Check):
    """An ISO calendar date YYYY-MM-DD (dates are text in the state: no floats, no tz)."""

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
            raise bad(where, "must be a date YYYY-MM-DD")
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise bad(where, "is not a calendar date") from None
        return value

    def compile(self) -> Run:
        slow, shaped, calendar = self.check, _DATE_RE.fullmatch, dt.date.fromisoformat

        def run(value: Any, where: str) -> Any:
            if type(value) is str and shaped(value):
                try:
                    calendar(value)
                except ValueError:
                    pass
                else:
                    return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Int(Check):
    lo: int = 0
    hi: int = INT_MAX

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(where, "must be an integer")
        if not self.lo <= value <= self.hi:
            raise bad(where, f"must be in {self.lo}..{self.hi}")
        return value

    def compile(self) -> Run:
        lo, hi, slow = self.lo, self.hi, self.check

        def run(value: Any, where: str) -> Any:
            if type(value) is int and lo <= value <= hi:  # not bool: type() is exact
                return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Flag(Check):
    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise bad(where, "must be a boolean")
        return value

    def compile(self) -> Run:
        slow = self.check

        def run(value: Any, where: str) -> Any:
            if value is True or value is False:
                return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Blob(Check):
    lo: int
    hi: int

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bytes):
            raise bad(where, "must be bytes")
        if not self.lo <= len(value) <= self.hi:
            raise bad(where, f"must be {self.lo}..{self.hi} bytes")
        return value

    def compile(self) -> Run:
        lo, hi, slow = self.lo, self.hi, self.check

        def run(value: Any, where: str) -> Any:
            if type(value) is bytes and lo <= len(value) <= hi:
                return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class OneOf(Check):
    values: tuple[str, ...]

    def check(self, value: Any, where: str) -> Any:
        if value not in self.values:
            raise bad(where, f"must be one of {', '.join(self.values)}")
        return value

    def compile(self) -> Run:
        allowed, slow = frozenset(self.values), self.check

        def run(value: Any, where: str) -> Any:
            if type(value) is str and value in allowed:
                return value
            return slow(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Opt(Check):
    inner: Check

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)

    def compile(self) -> Run:
        inner = self.inner.compile()

        def run(value: Any, where: str) -> Any:
            return None if value is None else inner(value, where)
        return run


@dataclass(frozen=True, slots=True)
class Many(Check):
    """A list (stored as a tuple) of `inner` items; unique items keep one meaning per entry."""

    inner: Check
    lo: int
    hi: int
    unique: bool = True

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise bad(where, "must be a list")
        if not self.lo <= len(value) <= self.hi:
            raise bad(where, f"must hold {self.lo}..{self.hi} items")
        items = tuple(self.inner.check(v, f"{where}[{i}]") for i, v in enumerate(value))
        if self.unique and len({_hashable(v) for v in items}) != len(items):
            raise bad(where, "must not repeat an item")
        return items

    def compile(self) -> Run:
        lo, hi, unique, slow, inner = self.lo, self.hi, self.unique, self.check, self.inner.compile()

        def run(value: Any, where: str) -> Any:
            if type(value) is not list or not lo <= len(value) <= hi:
                return slow(value, where)
            items = tuple([inner(v, f"{where}[{i}]") for i, v in enumerate(value)])
            if unique and len({_hashable(v) for v in items}) != len(items):
                raise bad(where, "must not repeat an item")
            return items
        return run


@dataclass(frozen=True, slots=True)
class Nested(Check):
    """A map parsed into another Shape."""

    shape: type[Shape]

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, self.shape):
            return value
        return self.shape.parse(value, where)


# ------------------------------------------------------------------ common field types

HEX64_RE = r"[0-9a-f]{64}"
REF_RE = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
UNLOC_RE = r"[A-Z]{2}[A-Z2-9]{3}"

PartyId = Annotated[str, Id()]
OptPartyId = Annotated[str | None, Opt(Id())]
Hex64 = Annotated[str, Text(64, HEX64_RE, 64)]
OptHex64 = Annotated[str | None, Opt(Text(64, HEX64_RE, 64))]
Ref = Annotated[str, Text(64, REF_RE)]
DateText = Annotated[str, Date()]
OptDate = Annotated[str | None, Opt(Date())]
Amount = Annotated[int, Int(1, limits.amount_minor_units_max)]
Currency = Annotated[str, Text(3, r"[A-Z]{3}", 3)]
UnLoc = Annotated[str, Text(5, UNLOC_RE, 5)]
Digest32 = Annotated[bytes, Blob(limits.digest_bytes, limits.digest_bytes)]


# ------------------------------------------------------------------ the Shape base

S = TypeVar("S", bound="Shape")


@dataclass(frozen=True, slots=True)
class Shape:
    """Base of every tx body and body part: validates itself on construction."""

    EXTRA: ClassVar[tuple[str, ...]] = ()  # derived (init=False) fields, not on the wire

    def __post_init__(self) -> None:
        for field_name, run, where in _plan(type(self)):
            value = getattr(self, field_name)
            fixed = run(value, where)
            if fixed is not value:
                object.__setattr__(self, field_name, fixed)  # list -> tuple, frozen
        self.validate()

    def validate(self) -> None:
        """Cross-field checks of a subclass (raise TxError)."""

    @classmethod
    def parse(cls: type[S], raw: Any, where: str = "") -> S:
        where = where or cls.__name__
        if not isinstance(raw, dict):
            raise bad(where, "must be a map")
        names, build = _names(cls)
        if raw.keys() != names:
            missing = sorted(names - set(raw))
            extra = sorted(set(raw) - names)
            raise bad(where, f"fields differ from the schema (missing {missing}, unexpected {extra})")
        if build is None:
            return cls(**raw)
        return build(raw)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        return {n: plain(getattr(self, n)) for n, _ in spec(type(self))}


def plain(value: Any) -> Any:
    """A wire value: tuples become lists, shapes become maps."""
    if isinstance(value, Shape):
        return value.to_dict()
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


_SPECS: dict[type, tuple[tuple[str, Check], ...]] = {}


def spec(cls: type) -> tuple[tuple[str, Check], ...]:
    """(field name, check) of every wire field of a Shape subclass, cached per class."""
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls, include_extras=True)
    out: list[tuple[str, Check]] = []
    for f in fields(cls):
        if not f.init:
            continue
        hint = hints[f.name]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"{cls.__name__}.{f.name} has no Check")
        checks = [a for a in get_args(hint)[1:] if isinstance(a, Check)]
        assert len(checks) == 1, f"{cls.__name__}.{f.name} needs exactly one Check"
        out.append((f.name, checks[0]))
    _SPECS[cls] = tuple(out)
    return _SPECS[cls]


_PLANS: dict[type, tuple[tuple[str, Run, str], ...]] = {}
_NAMES: dict[type, tuple[frozenset[str], Callable[[dict[str, Any]], Any] | None]] = {}


def _plan(cls: type) -> tuple[tuple[str, Run, str], ...]:
    """(field name, compiled check, "Class.field") of every wire field, cached per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple((n, check.compile(), f"{cls.__name__}.{n}") for n, check in spec(cls))
    return plan


def _names(cls: type) -> tuple[frozenset[str], Callable[[dict[str, Any]], Any] | None]:
    """The wire field names, and the builder Shape.parse uses when it may build the
    object itself (None: it may not): the class keeps Shape's __post_init__ and the
    dataclass __init__ sets nothing but the wire fields (no derived field has a default)."""
    found = _NAMES.get(cls)
    if found is None:
        direct = (getattr(cls, "__post_init__", None) is Shape.__post_init__
                  and all(f.default is MISSING and f.default_factory is MISSING for f in fields(cls) if not f.init))
        found = _NAMES[cls] = (frozenset(n for n, _ in spec(cls)), _builder(cls) if direct else None)
    return found


def _builder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """What cls(**raw) does for a map with exactly the wire fields (the dataclass
    __init__ stores the fields, __post_init__ checks them in plan order, then validate()),
    storing each value once, checked: one generated function per class, the plan's
    loop unrolled, each value stored through its slot (what object.__setattr__ does
    for a slotted class), validate() left out where it is Shape's own (it does nothing)."""
    ns: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = ["def build(raw):", "    shape = new(cls)"]
    for i, (name, run, where) in enumerate(_plan(cls)):
        slot = getattr(cls, name)
        assert isinstance(slot, types.MemberDescriptorType), (cls, name)
        ns[f"run{i}"], ns[f"set{i}"], ns[f"where{i}"] = run, slot.__set__, where
        lines.append(f"    set{i}(shape, run{i}(raw[{name!r}], where{i}))")
    if getattr(cls, "validate", None) is not Shape.validate:
        lines.append("    shape.validate()")
    lines.append("    return shape")
    exec("\n".join(lines), ns)  # noqa: S102 - our own field names, repr'd
    return ns["build"]  # type: ignore[no-any-return]


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")  # C0 controls but tab and newline
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _PATTERNS.get(pattern)
    if found is None:
        found = _PATTERNS[pattern] = re.compile(pattern)
    return found


def _hashable(value: Any) -> Any:
    if isinstance(value, Shape):
        return repr(value.to_dict())
    return value

