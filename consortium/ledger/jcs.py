r"""RFC 8785 (JSON Canonicalization Scheme) bytes at C speed, identical to the `rfc8785` library.

`rfc8785.dumps` (pure Python) is the reference and stays the only definition of the
canonical form: `dumps` below returns its bytes, computing them with msgspec's C JSON
encoder (keys sorted, no whitespace, UTF-8, no ASCII escaping) when a cheap walk proves
the value lies in the domain where the two produce the same bytes, and calls
`rfc8785.dumps` otherwise (so every error, and every value outside that domain, is the
library's own). The domain (read in rfc8785 0.1.4's _impl.py; tested with msgspec 0.23):

- containers are exactly dict (str keys), list or tuple; scalars exactly str, int,
  float, bool or None (no subclasses: their hooks could differ between the two);
- ints within rfc8785's range, -(2**53 - 1) .. 2**53 - 1 (outside: IntegerDomainError);
- floats non-integral with 1e-4 <= |x| < 2**53 (so finite, below 1e16): both write the
  shortest round-trip digits in fixed-point notation there, which is ECMAScript's
  Number-to-String; integral floats with |x| < 2**53 (DCSA documents carry weights
  like 12000.0): rfc8785 writes the integer (ECMAScript drops ".0"; below 2**53 the
  shortest digits are the exact value, and -0.0 is "0"), so they are encoded as ints;
  tiny, huge or non-finite floats go to the library;
- keys without characters beyond the BMP: code-point order (msgspec's sort) is then
  UTF-16 order (RFC 8785 3.2.3); a key or string with a lone surrogate cannot be
  encoded in UTF-8, msgspec raises and the library answers with its own error;
- strings: both escape exactly the quote, the backslash and U+0000..U+001F (\b \f \n
  \r \t short, the others as \u00xx with lower-case hex) and nothing else.

tests/ledger/test_dcsa_fast.py holds the two to equal bytes and equal exceptions over
arbitrary JSON values (Hypothesis) and every DCSA document we have.
"""

from __future__ import annotations

from typing import Any

import msgspec
import rfc8785

#: rfc8785's integer range (_impl._INT_MIN, _impl._INT_MAX): the integers an IEEE 754 double holds exactly.
_INT_FLOOR = -(2**53) + 1
_INT_CEIL = 2**53 - 1
_FIXED_FROM = 1e-4  # below this Python's repr switches to exponent notation (ECMAScript only below 1e-6)
_EXACT_FLOAT_INTS = 2.0**53  # below this an integral float's shortest digits are its exact integer value
_BMP_END = "\uffff"

_ENCODE = msgspec.json.Encoder(order="sorted").encode
_DECODE = msgspec.json.decode


def dumps(value: Any) -> bytes:
    """The RFC 8785 bytes of `value`, equal to `rfc8785.dumps(value)` (same bytes, same errors)."""
    domain = _fast_domain(value)
    if domain != _OUTSIDE:
        try:
            return _ENCODE(value if domain == _AS_IS else _integral_floats_as_ints(value))
        except UnicodeEncodeError:  # a lone surrogate: the library raises its own error
            pass
    return rfc8785.dumps(value)


def decode_canonical(text: str) -> tuple[Any, bytes] | None:
    """(value, bytes) when `text` is exactly the RFC 8785 form of a value in the fast
    domain (as is, no integral floats), else None.

    Such a text has no duplicate keys (one member per key of the value it encodes), no
    NaN, no whitespace outside strings, ints within 2**53 and floats as their shortest
    round-trip digits, so every strict JSON parser reads the same value with the same
    types: msgspec's decoding is then what the strict loader (dcsa.load_json) gives, and
    the canonical form is already known. An ISSUE's document built by our clients is
    such a text (builders.document_text)."""
    if not text.startswith('{"'):  # cheap: a pretty-printed or non-object text is never canonical here
        return None
    try:
        value = _DECODE(text)
        if _fast_domain(value) != _AS_IS:
            return None
        canon = _ENCODE(value)
        return (value, canon) if canon == text.encode("utf-8") else None
    except (msgspec.DecodeError, ValueError):  # malformed, a lone surrogate: not canonical
        return None


_OUTSIDE, _AS_IS, _WITH_INTEGRAL_FLOATS = 0, 1, 2


def _fast_domain(value: Any) -> int:
    """_AS_IS if msgspec's output for `value` is rfc8785's (the module docstring's domain),
    _WITH_INTEGRAL_FLOATS if it is once the integral floats are ints, else _OUTSIDE."""
    found = _AS_IS
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is dict:
            for k in v:
                if type(k) is not str or (not k.isascii() and max(k) > _BMP_END):
                    return _OUTSIDE
            extend(v.values())
        elif t is list or t is tuple:
            extend(v)
        elif t is int:
            if not _INT_FLOOR <= v <= _INT_CEIL:
                return _OUTSIDE
        elif t is float:
            if v.is_integer() and -_EXACT_FLOAT_INTS < v < _EXACT_FLOAT_INTS:
                found = _WITH_INTEGRAL_FLOATS
            elif not (_FIXED_FROM <= abs(v) < _EXACT_FLOAT_INTS and not v.is_integer()):  # not inf, not NaN
                return _OUTSIDE
        else:
            return _OUTSIDE
    return found


def _integral_floats_as_ints(v: Any) -> Any:
    """A copy of `v` (in the fast domain) with each integral float an int: rfc8785 writes
    12000.0 as 12000 (ECMAScript), msgspec as 12000.0."""
    t = type(v)
    if t is dict:
        return {k: _integral_floats_as_ints(x) for k, x in v.items()}
    if t is list or t is tuple:
        return [_integral_floats_as_ints(x) for x in v]
    if t is float and v.is_integer():
        return int(v)
    return v
