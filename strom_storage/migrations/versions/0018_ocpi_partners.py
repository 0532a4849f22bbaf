"""OCPI roaming partners and the log of every OCPI request

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 16:20:00

``ocpi_partners`` holds each roaming partner: its party, the state of the credentials exchange,
hashes of the tokens it uses on Strom, the (sealed) token Strom uses on it, its versions URL,
chosen version and endpoints, settlement mode and blocked flag. ``ocpi_log`` records every OCPI
request in and out; the retention sweep prunes it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocpi_partners",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("party_id", sa.String(length=3), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token_a_hash", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("next_token_hash", sa.String(length=64), nullable=True),
        sa.Column("their_token", sa.Text(), nullable=True),
        sa.Column("versions_url", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=10), nullable=True),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("settlement", sa.String(length=16), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('offered', 'registered', 'unregistered')",
            name=op.f("ck_ocpi_partners_state"),
        ),
        sa.CheckConstraint(
            "settlement IN ('after_cdr', 'streaming')", name=op.f("ck_ocpi_partners_settlement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpi_partners")),
        sa.UniqueConstraint("token_a_hash", name=op.f("uq_ocpi_partners_token_a_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ocpi_partners_token_hash")),
        sa.UniqueConstraint("next_token_hash", name=op.f("uq_ocpi_partners_next_token_hash")),
    )
    op.create_table(
        "ocpi_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("correlation_id", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("excerpt", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpi_log")),
    )
    op.create_index("ix_ocpi_log_at", "ocpi_log", ["at"])
    op.create_index("ix_ocpi_log_partner", "ocpi_log", ["partner_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_ocpi_log_partner", table_name="ocpi_log")
    op.drop_index("ix_ocpi_log_at", table_name="ocpi_log")
    op.drop_table("ocpi_log")
    op.drop_table("ocpi_partners")
