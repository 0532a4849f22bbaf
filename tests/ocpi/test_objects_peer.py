"""Strom's OCPI objects validated by the independent implementation (py_ocpi's 2.2.1 models).

The validator runs in the peer's own venv (pydantic 1): ``tests/peers/ocpi_validate.py``. The
official examples go through it too, which proves the validator accepts what the spec shows.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ocpi_server.objects import (
    Pricing,
    cdr,
    dumps,
    evse_patch,
    location,
    session,
    tariff,
    terms_from_config,
)
from tests.conftest import peer_missing
from tests.ocpi.objects_samples import NOW, PARTY, PROFILES, RATE, charged, schedule
from tests.peers import ocpi as ocpi_peer

pytestmark = pytest.mark.peer

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ocpi"
VALIDATOR = Path(__file__).resolve().parents[1] / "peers" / "ocpi_validate.py"
_KINDS = {"location": "location", "tariff": "tariff", "session": "session", "cdr": "cdr"}


def _validate(items: list[tuple[str, Any]]) -> list[list[str]]:
    try:
        python = ocpi_peer.python()
    except ocpi_peer.PeerUnavailable as exc:
        peer_missing(str(exc))
    body = (
        b"["
        + b",".join(
            b'{"type":' + json.dumps(kind).encode() + b',"object":' + dumps(obj) + b"}"
            for kind, obj in items
        )
        + b"]"
    )
    done = subprocess.run(
        [str(python), str(VALIDATOR)], input=body, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    result: list[list[str]] = json.loads(done.stdout)
    return result


def _examples(prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(VECTORS.glob(f"{prefix}*.json"))]


def _strom_objects() -> list[tuple[str, str, Any]]:
    """Every object the mappers make for the sample profiles, in BTC and EUR."""
    objects: list[tuple[str, str, Any]] = []
    for name, prof in PROFILES.items():
        sched = schedule() if name == "dynamic" else None
        terms = terms_from_config(prof.tariff, schedule=sched, fiat_rate=RATE)
        statuses = {c.id: "Charging" for c in prof.connectors}
        objects.append(
            (name, "location", location(prof, statuses, PARTY, NOW, tariff_ids=["cp-1"]))
        )
        objects.append((name, "evse_patch", evse_patch("Available", NOW)))
        s = charged(name, idle_after_s=1_800 if name == "idle" else None)
        for pricing in (Pricing.bitcoin(), Pricing.fiat("EUR", RATE)):
            objects.append(
                (name, "tariff", tariff("cp-1", terms, PARTY, pricing, s.started_at or NOW))
            )
            objects.append(
                (name, "session", session(s, prof, PARTY, pricing, NOW, tariff_id="cp-1"))
            )
            objects.append((name, "cdr", cdr(s, prof, PARTY, pricing, NOW, tariff_id="cp-1")))
    return objects


def test_the_official_examples_pass_the_validator() -> None:
    items = [("location", e) for e in _examples("location_example")] + [
        ("evse_patch", e) for e in _examples("location_patch_example_status")
    ]
    items += [("tariff", e) for e in _examples("tariff_")]
    items += [("session", e) for e in _examples("session_example")]
    items += [("cdr", e) for e in _examples("cdr_example")]
    assert len(items) == 11
    assert _validate(items) == [[]] * len(items)


def test_the_validator_refuses_what_the_spec_does_not_allow() -> None:
    (example,) = _examples("cdr_example")
    broken = {**example, "total_cost": "12", "surprise": 1}
    del broken["cdr_location"]
    errors = _validate([("cdr", broken)])[0]
    assert any(e.startswith("cdr_location") for e in errors)
    assert any(e.startswith("surprise") for e in errors)


def test_every_strom_object_is_valid_for_the_independent_implementation() -> None:
    objects = _strom_objects()
    errors = _validate([(kind, obj) for _, kind, obj in objects])
    found = {
        f"{name} {kind}": problems
        for (name, kind, _), problems in zip(objects, errors, strict=True)
        if problems
    }
    assert found == {}


# Optional members of the spec's object tables (mod_cdrs CDR object) that the examples omit.
_SPEC_OPTIONAL = {
    "cdr": {
        "session_id",
        "total_fixed_cost",
        "total_energy_cost",
        "total_parking_time",
        "total_parking_cost",
        "remark",
    },
    "evse": {"coordinates"},  # mod_locations EVSE object
    "connector": {"max_electric_power"},  # mod_locations Connector object
}


def _keys(objs: list[dict[str, Any]]) -> set[str]:
    return {key for obj in objs for key in obj}


def test_strom_objects_have_the_shape_of_the_official_examples() -> None:
    objects = _strom_objects()
    examples = {
        "location": _examples("location_example"),
        "tariff": _examples("tariff_"),
        "session": _examples("session_example"),
        "cdr": _examples("cdr_example"),
    }
    for kind, known in examples.items():
        ours = [obj for _, k, obj in objects if k == kind]
        assert _keys(ours) <= _keys(known) | _SPEC_OPTIONAL.get(kind, set()), kind
        for obj in ours:
            for key, value in obj.items():
                shapes = {type(e[key]).__name__ for e in known if key in e}
                ours_shape = (
                    "float" if type(value).__name__ in {"Decimal", "int"} else type(value).__name__
                )
                shapes = {"float" if s == "int" else s for s in shapes}
                assert not shapes or ours_shape in shapes, (kind, key, value)
    evses = [e for _, k, obj in objects if k == "location" for e in obj["evses"]]
    known_evses = [e for x in examples["location"] for e in x.get("evses", [])]
    assert _keys(evses) <= _keys(known_evses) | _SPEC_OPTIONAL["evse"]
    connectors = [c for e in evses for c in e["connectors"]]
    known_connectors = [c for e in known_evses for c in e["connectors"]]
    assert _keys(connectors) <= _keys(known_connectors) | _SPEC_OPTIONAL["connector"]
    cdr_locations = [obj["cdr_location"] for _, k, obj in objects if k == "cdr"]
    assert _keys(cdr_locations) <= _keys([x["cdr_location"] for x in examples["cdr"]])
