"""The durable effect that sends a roaming partner the CDR of its session.

The session store's journal calls :func:`queue_partner_cdr` in the transaction that makes a
partner's bill final (:func:`strom_storage.sessions.apply_event`), so the effect exists if
and only if the bill was committed, and once per session (its idempotency key). The OCPI
front door runs it (POST to the partner's CDRs endpoint, retried with backoff until the
partner takes it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.engine import Connection

from strom_storage.outbox import queue_effect
from strom_storage.schema import ocpi_partners

__all__ = ["PARTNER_CDR", "ocpi_partner_registered", "queue_partner_cdr"]

PARTNER_CDR: Final = "partner_cdr"  # the outbox kind: POST a partner's CDR
_MAX_ID_DIGITS = 18


def ocpi_partner_registered(conn: Connection, partner_id: str) -> bool:
    """Whether the roaming partner ``partner_id`` is a registered OCPI partner.

    A roaming partner's id is its OCPI partner row's id as a string; any other id (a partner
    managed outside OCPI) is not one.
    """
    if not partner_id.isdigit() or len(partner_id) > _MAX_ID_DIGITS:
        return False
    query = select(ocpi_partners.c.state).where(ocpi_partners.c.id == int(partner_id))
    return conn.scalar(query) == "registered"


def queue_partner_cdr(conn: Connection, session_id: str, partner_id: str, now: datetime) -> bool:
    """Queue the CDR of a partner's session, in the transaction that makes its bill final.

    Only for a registered OCPI partner; the idempotency key ``partner_cdr:<session>`` makes it
    once per session. The row is not ordered with the session's other effects (its
    ``session_id`` is None): a partner that is down for hours holds nothing else back.

    Returns:
        Whether it was queued (False: not a registered OCPI partner now).
    """
    if not ocpi_partner_registered(conn, partner_id):
        return False
    queue_effect(
        conn,
        key=f"{PARTNER_CDR}:{session_id}",
        kind=PARTNER_CDR,
        payload={"partner_id": partner_id, "session_id": session_id},
        session_id=None,
        now=now,
    )
    return True
