"""Roaming partners: their tokens, their sessions' OCPI records, receivables and terms

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 16:15:00

A roaming partner (an OCPI eMSP) pays after the charge: its sessions are ordinary post-paid
sessions (``sessions.payer`` = ``partner:<id>``). ``roaming_sessions`` keeps what OCPI needs of
each (token, authorisation reference, how it started); ``roaming_tokens`` the partners'
tokens; ``receivables`` each partner session's bill and the invoice offered for it;
``roaming_partner_terms`` whether an overdue bill blocks a partner's new starts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roaming_sessions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("token_uid", sa.String(length=36), nullable=False),
        sa.Column("token_type", sa.String(length=16), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("authorization_reference", sa.String(length=36), nullable=True),
        sa.Column("started_by", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_roaming_sessions_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_roaming_sessions")),
        sa.UniqueConstraint(
            "partner_id", "authorization_reference", name="uq_roaming_sessions_authorization"
        ),
    )
    op.create_table(
        "roaming_tokens",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("visual_number", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("whitelist", sa.String(length=16), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "uid", "type", name=op.f("pk_roaming_tokens")),
    )
    op.create_table(
        "receivables",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.Column("bolt11", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invoiced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_receivables_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receivables")),
        sa.UniqueConstraint("session_id", name=op.f("uq_receivables_session_id")),
    )
    op.create_index(op.f("ix_receivables_partner_id"), "receivables", ["partner_id"], unique=False)
    op.create_index("ix_receivables_due", "receivables", ["state", "due_at"], unique=False)
    op.create_table(
        "roaming_partner_terms",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("block_when_overdue", sa.Boolean(), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_roaming_partner_terms")),
    )


def downgrade() -> None:
    op.drop_table("roaming_partner_terms")
    op.drop_index("ix_receivables_due", table_name="receivables")
    op.drop_index(op.f("ix_receivables_partner_id"), table_name="receivables")
    op.drop_table("receivables")
    op.drop_table("roaming_tokens")
    op.drop_table("roaming_sessions")
