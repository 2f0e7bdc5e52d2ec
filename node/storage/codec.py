"""Records to and from the JSON kept in the `data` column (the node's own, private form)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from node.convert.common import fmt_datetime, parse_datetime
from node.records import Address, Identifier, Location, Record

_DATES = ("published", "updated", "start", "end")
_TUPLES = ("themes", "partners", "involves", "organizers")


def record_to_json(record: Record) -> str:
    data = asdict(record)
    for key in _DATES:
        value = getattr(record, key)
        data[key] = fmt_datetime(value) if value is not None else None
    return json.dumps({k: v for k, v in data.items() if v not in ("", None, [], ())}, ensure_ascii=False)


def record_from_json(text: str) -> Record:
    data: dict[str, Any] = json.loads(text)
    known = {f.name for f in fields(Record)}
    data = {k: v for k, v in data.items() if k in known}
    for key in _DATES:
        if data.get(key):
            data[key] = parse_datetime(data[key])
    for key in _TUPLES:
        data[key] = tuple(data.get(key, ()))
    data["identifiers"] = tuple(Identifier(**i) for i in data.get("identifiers", ()))
    loc = data.get("location")
    if loc is not None:
        address = loc.get("address")
        data["location"] = Location(**{**loc, "address": Address(**address) if address else None})
    return Record(**data)


