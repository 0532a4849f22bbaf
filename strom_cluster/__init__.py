"""The bus between Strom's processes (:mod:`strom_core.ports.cluster`), three ways.

* :class:`LocalBus` — within one process: a single Strom, and tests;
* :class:`PgNotifyBus` — PostgreSQL's LISTEN/NOTIFY: no service besides the database;
* :class:`NatsBus` — a NATS server, core request/reply and publish/subscribe.

Measured side by side in ``bench/cluster_bus.py`` (figures and the choice in bench/README.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom_cluster.local import LocalBus, LocalHub
from strom_cluster.nats_bus import NatsBus
from strom_cluster.pg_notify import PgNotifyBus

__all__ = ["LocalBus", "LocalHub", "NatsBus", "PgNotifyBus"]

if TYPE_CHECKING:
    from strom_core.ports.cluster import Bus

    def _each_is_a_bus(local: LocalBus, postgres: PgNotifyBus, nats: NatsBus) -> list[Bus]:
        return [local, postgres, nats]  # mypy checks each against the port
