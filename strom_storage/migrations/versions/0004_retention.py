"""Indexes for the retention sweep and for the agents' list of payers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 04:00:00

The sweep (``strom_storage/retention.py``) deletes in small batches by age; each batch finds
its rows through one of these indexes instead of scanning the table. Outbox rows that were
given up (``dead``) get ``done_at`` (when they died), as the runner now sets it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_sessions_updated", "sessions", ["updated_at"]),
    ("ix_refunds_offers", "refunds", ["state", "expires_at"]),
    ("ix_ocpp_unknown_stops_received", "ocpp_unknown_stops", ["received_at"]),
    ("ix_meter_readings_sampled", "meter_readings", ["sampled_at"]),
    ("ix_nostr_events_kind_received", "nostr_events", ["kind", "received_at"]),
    ("ix_outbox_finished", "outbox", ["state", "done_at"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)
    outbox = sa.table("outbox", sa.column("state"), sa.column("done_at"), sa.column("run_after"))
    op.execute(
        outbox.update()
        .where(outbox.c.state == "dead", outbox.c.done_at.is_(None))
        .values(done_at=outbox.c.run_after)
    )


def downgrade() -> None:
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
