"""ticketing: the SLA clock's timers (one per ticket and kind)

Revision ID: 0015_sla_timers
Revises: 0011_agent_states
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0015_sla_timers"
down_revision = "0011_agent_states"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("limit_min", sa.Integer(), nullable=False),
        sa.Column("working_time", sa.Boolean(), nullable=False),
        sa.Column("armed_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("fired_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("notified_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_sla_timers_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_timers")),
        sa.UniqueConstraint("ticket_id", "kind", name=op.f("uq_sla_timers_ticket_id")),
    )
    op.create_index("ix_sla_timers_due", "sla_timers", ["state", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_sla_timers_due", table_name="sla_timers")
    op.drop_table("sla_timers")
