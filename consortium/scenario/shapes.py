"""The shape of what each record expectation compares: the JSON that
`consortium.ledger.queries` returns for an eBL, an LC, a financing, ... as a
tree of field names, derived from the ledger's record classes plus the fields
the queries add. A scenario's dot path (`"presentation_records.0.status"`) is
checked against it when the file is read, so a misspelt field is a file error
with the nearest valid name, never a silently "absent" value."""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from consortium.ledger import records as r


@dataclass(frozen=True, slots=True)
class Items:
    """A list: the next path part is an index, then the item's shape."""

    of: Shape


#: None: a plain value (str, int, bool, hex bytes); a dict: named fields; Items: a list
Shape = Union[None, dict[str, "Shape"], Items]


def _of_type(hint: Any) -> Shape:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _of_type(inner[0]) if len(inner) == 1 else None
    if origin is tuple:
        return Items(_of_type(get_args(hint)[0]))
    if isinstance(hint, type) and is_dataclass(hint) and issubclass(hint, r.Record):
        return record(hint)
    return None


def record(cls: type[r.Record]) -> dict[str, Shape]:
    """The value form of a record class (`records.to_value`): one entry per field."""
    hints = get_type_hints(cls)
    return {f.name: _of_type(hints[f.name]) for f in fields(cls)}


def _ebl() -> dict[str, Shape]:  # queries.ebl
    return {**record(r.Ebl), "title_holder": None, "switched_to_paper": None,
            "chain": Items({**record(r.ChainEntry), "digest": None})}


#: expectation kind -> the shape of the record its query returns
KINDS: dict[str, dict[str, Shape]] = {
    "ebl": _ebl(),
    "ebl_ref": {**_ebl(), "history": Items(None)},  # queries.ebl_by_reference
    "lc": {**record(r.Lc), "presentation_records": Items({**record(r.Presentation), "refusal_precluded": None}),
           "available_with": Items(None), "undertakings": Items(None)},
    "financing": {**record(r.Financing), "liens": Items(record(r.Lien)), "ebls_under_control": Items(None)},
    "collateral": record(r.Lien),
    "party": record(r.PartyRecord),
    "data": {**record(r.Attestation), "consents": Items(record(r.Consent))},
    "consent": record(r.Consent),
    "account": record(r.Account),  # queries.account: id "bank/currency/holder"
    "dvp": record(r.DvpRec),
}


def path_problem(shape: Shape, path: str) -> str | None:
    """None if `path` (dot separated, list indexes as numbers) names a field of `shape`;
    else what is wrong, with the nearest valid path where there is one."""
    node = shape
    parts = path.split(".")
    for i, part in enumerate(parts):
        before = ".".join(parts[:i])
        if isinstance(node, dict):
            if part not in node:
                near = difflib.get_close_matches(part, list(node), n=1)
                hint = (f" (did you mean '{'.'.join([*parts[:i], near[0]])}'?)" if near
                        else f" (fields{' of ' + repr(before) if before else ''}: {', '.join(sorted(node))})")
                return f"unknown field '{path}'{hint}"
            node = node[part]
        elif isinstance(node, Items):
            if not part.isdigit():
                return f"field '{path}': '{before}' is a list, so '{part}' must be an index (0, 1, ...)"
            node = node.of
        else:
            return f"field '{path}': '{before}' is a plain value without fields"
    return None
