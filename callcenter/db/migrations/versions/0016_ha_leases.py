"""ha: one lease row per Asterisk link (one owner per link across servers)

Revision ID: 0016_ha_leases
Revises: 0015_sla_timers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0016_ha_leases"
down_revision = "0015_sla_timers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ha_leases",
        sa.Column("link", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("link", name=op.f("pk_ha_leases")),
    )


def downgrade() -> None:
    op.drop_table("ha_leases")
