"""outage_notices: 停水停电通知 callers hear after the greeting

Revision ID: 0021_outage_notices
Revises: 0020_outbound
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callcenter.db.base import UtcDateTime

revision = "0021_outage_notices"
down_revision = "0020_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outage_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(),
                  sa.ForeignKey("communities.id", ondelete="CASCADE",
                                name="fk_outage_notices_community_id_communities"),
                  nullable=False),
        sa.Column("building", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("unit_from", sa.Integer(), nullable=True),
        sa.Column("unit_to", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("all_callers", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("starts_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.String(length=100), nullable=False),
        sa.Column("audio_note", sa.String(length=300), nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_role", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("end_note", sa.String(length=300), nullable=False, server_default=""),
    )
    op.create_index("ix_outage_notices_community_ends", "outage_notices",
                    ["community_id", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_outage_notices_community_ends", table_name="outage_notices")
    op.drop_table("outage_notices")
