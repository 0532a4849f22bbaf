"""OCPP 2.0.1: everything that is particular to OCPP 2.0.1 in Strom's central system.

It mirrors :mod:`ocpp_server.v16`; the version-neutral parts pick it when a charger negotiates
the ``ocpp2.0.1`` websocket subprotocol.

* :mod:`~ocpp_server.v201.schemas`: payload validation against the OCPP 2.0.1 JSON schemas,
  with the error codes of OCPP-J 2.0.1.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SUBPROTOCOL"]

SUBPROTOCOL: Final = "ocpp2.0.1"
