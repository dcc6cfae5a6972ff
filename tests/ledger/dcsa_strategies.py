"""Hypothesis strategies derived from the DCSA eBL 3.0.3 schema the package ships.

`hypothesis-jsonschema` (0.23.1, the latest) does not run on the Hypothesis this
project uses (it calls a removed internal API), so the strategies are derived here,
for the JSON Schema subset the DCSA components use: object (properties, required),
array (items, minItems, maxItems), string (enum, pattern, minLength, maxLength,
format date / date-time), boolean, integer, number (minimum, maximum, exclusive
bounds, draft 4), allOf, anyOf, oneOf, `$ref`. A schema that refers to itself
(InnerPackaging) is cut at the second level (the recursive property is left out).
Arrays and free text are kept short (`ARRAY_CAP`, `TEXT_CAP`) so a document fits a
transaction; a generated document is still checked against the reference validator
(`jsonschema`), and only schema-valid ones are used.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from consortium.ledger import dcsa

ARRAY_CAP = 2  # items beyond minItems an array gets at most
TEXT_CAP = 16  # characters of a free text without a pattern, at most
_NO_EDGE_SPACE = "^\\S(?:.*\\S)?\\Z"  # DCSA's "^\\S(?:.*\\S)?$" in Python terms (dcsa._ecma_pattern)
_NO_SPACE = "^\\S+\\Z"
_LINE = st.characters(blacklist_characters="\n", blacklist_categories=("Cs",))
_WORD = st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"))
_ANNOTATIONS = frozenset({"description", "example", "examples", "title", "discriminator"})


def inlined_transport_document() -> dict[str, Any]:
    """TransportDocument with every `$ref` inlined and annotations dropped."""
    comps = dcsa.transport_document_schema()["components"]["schemas"]

    def inline(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[1]
                return {"not": {}} if name in stack else inline(comps[name], stack + (name,))
            out: dict[str, Any] = {}
            for k, v in node.items():
                if k == "properties":
                    out[k] = {name: inline(sub, stack) for name, sub in v.items()}
                elif k not in _ANNOTATIONS:
                    out[k] = inline(v, stack)
            return out
        if isinstance(node, list):
            return [inline(v, stack) for v in node]
        return node

    return inline(comps["TransportDocument"], ("TransportDocument",))  # type: ignore[no-any-return]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if k == "properties":
            out[k] = {**out.get(k, {}), **v}
        elif k == "required":
            out[k] = sorted(set(out.get(k, [])) | set(v))
        else:
            out[k] = v
    return out


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if schema.get("not") == {}:
        return st.nothing()
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = _merge(merged, part)
        return from_schema(merged)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([from_schema(_merge(base, branch)) for branch in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object":
        return _object(schema)
    if kind == "array":
        lo = schema.get("minItems", 0)
        hi = min(schema.get("maxItems", lo + ARRAY_CAP), lo + ARRAY_CAP)
        items = schema.get("items", {})
        if items.get("not") == {}:  # a cut recursion: only the empty list
            return st.just([]) if lo == 0 else st.nothing()
        return st.lists(from_schema(items), min_size=lo, max_size=hi)
    if kind == "string":
        return _string(schema)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _number(schema, kind)
    return st.none()


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    need = {k: from_schema(props.get(k, {})) for k in sorted(required)}
    optional = {k: from_schema(v) for k, v in sorted(props.items()) if k not in required and v.get("not") != {}}
    return st.fixed_dictionaries(need, optional=optional)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    fmt = schema.get("format")
    if fmt == "date":
        return st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)).map(dt.date.isoformat)
    if fmt == "date-time":
        return st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)).map(
            lambda d: d.replace(microsecond=0).isoformat() + "Z")
    top = min(hi if hi is not None else TEXT_CAP, max(lo, TEXT_CAP))
    pattern = schema.get("pattern")
    if pattern == _NO_EDGE_SPACE:  # most DCSA strings: from_regex would be ~10x slower
        return st.text(_LINE, min_size=max(lo, 1), max_size=top).map(str.strip).filter(lambda s: len(s) >= max(lo, 1))
    if pattern == _NO_SPACE:
        return st.text(_WORD, min_size=max(lo, 1), max_size=top)
    if pattern is not None:
        return st.from_regex(pattern).filter(lambda s: lo <= len(s) <= (hi if hi is not None else 10**6))
    return st.text(min_size=lo, max_size=top)


def _number(schema: dict[str, Any], kind: str) -> st.SearchStrategy[Any]:
    lo, hi = schema.get("minimum", -(10**9)), schema.get("maximum", 10**9)
    ex_lo, ex_hi = bool(schema.get("exclusiveMinimum")), bool(schema.get("exclusiveMaximum"))
    ints = st.integers(int(lo) + (1 if ex_lo and int(lo) == lo else 0), int(hi) - (1 if ex_hi and int(hi) == hi else 0))
    if kind == "integer":
        return ints
    floats = st.floats(lo, hi, exclude_min=ex_lo, exclude_max=ex_hi, allow_nan=False, allow_infinity=False)
    return st.one_of(ints, floats)
