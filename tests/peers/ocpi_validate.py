"""Validate OCPI 2.2.1 objects with the independent implementation's own models (py_ocpi).

Run with the peer's interpreter (``tests.peers.ocpi.python()``), never in Strom's venv:
py_ocpi is pydantic 1. Reads one JSON document from stdin: a list of ``{"type": T, "object":
{...}}`` with T one of location, evse_patch, tariff, session, cdr. Prints one JSON list to
stdout, for each item the list of its errors (empty: valid).

py_ocpi's models ignore members they do not know; here every model forbids them, so a
misspelt or invented member is an error too.
"""

import json
import sys

from py_ocpi.modules.cdrs.v_2_2_1 import schemas as cdrs
from py_ocpi.modules.locations import schemas as location_types
from py_ocpi.modules.locations.v_2_2_1 import schemas as locations
from py_ocpi.modules.sessions.v_2_2_1 import schemas as sessions
from py_ocpi.modules.tariffs.v_2_2_1 import schemas as tariffs
from pydantic import BaseModel, Extra, ValidationError

MODELS = {
    "location": locations.Location,
    "evse_patch": locations.EVSEPartialUpdate,
    "tariff": tariffs.Tariff,
    "session": sessions.Session,
    "cdr": cdrs.Cdr,
}


def _forbid_extra() -> None:
    for module in (cdrs, location_types, locations, sessions, tariffs):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                value.__config__.extra = Extra.forbid


def _spec_gaps(kind: str, obj: dict) -> list[str]:
    """Check what py_ocpi's models lack and take it out; return the problems found.

    CdrLocation.evse_uid (mod_cdrs: CiString(36), required) is missing from py_ocpi's model.
    """
    if kind != "cdr" or not isinstance(obj.get("cdr_location"), dict):
        return []
    where = dict(obj["cdr_location"])
    uid = where.pop("evse_uid", None)
    obj["cdr_location"] = where
    if not isinstance(uid, str) or not 1 <= len(uid) <= 36 or not uid.isascii():
        return ["cdr_location.evse_uid: required, CiString(36)"]
    return []


def _errors(kind: str, obj: object) -> list[str]:
    model = MODELS.get(kind)
    if model is None:
        return [f"unknown object type {kind!r}"]
    gaps = _spec_gaps(kind, obj) if isinstance(obj, dict) else []
    try:
        model.parse_obj(obj)
    except ValidationError as exc:
        return gaps + [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return gaps


def main() -> None:
    _forbid_extra()
    items = json.load(sys.stdin)
    json.dump([_errors(item["type"], item["object"]) for item in items], sys.stdout)


if __name__ == "__main__":
    main()
