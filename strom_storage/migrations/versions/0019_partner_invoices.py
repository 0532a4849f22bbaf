"""The Lightning invoices offered to roaming partners

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:30:00

``partner_invoices`` holds every invoice handed to a partner through the ``strom-invoices``
OCPI module (docs/ocpi-lightning.md): a session's CDR invoice, or the intervals of a streaming
session, with their current BOLT 11, status and version (each change is pushed once).
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_invoices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("receivable_id", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("bolt11", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stop_asked", sa.Boolean(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_partner_invoices_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_invoices")),
        sa.UniqueConstraint("payment_hash", name=op.f("uq_partner_invoices_payment_hash")),
        sa.UniqueConstraint("session_id", "seq", name="uq_partner_invoices_session_seq"),
    )
    op.create_index(
        "ix_partner_invoices_partner",
        "partner_invoices",
        ["partner_id", "last_updated"],
        unique=False,
    )
    op.create_index(
        "ix_partner_invoices_due", "partner_invoices", ["status", "due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_partner_invoices_due", table_name="partner_invoices")
    op.drop_index("ix_partner_invoices_partner", table_name="partner_invoices")
    op.drop_table("partner_invoices")
