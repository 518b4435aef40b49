"""ticket_groups (群发事件 / 一事多报), their log, and tickets.group_id

Revision ID: 0018_ticket_groups
Revises: 0017_complaint_grades
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callcenter.db.base import UtcDateTime

revision = "0018_ticket_groups"
down_revision = "0017_complaint_grades"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(),
                  sa.ForeignKey("communities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("building", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=100), nullable=True),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("opened_by_ticket_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=False, server_default=""),
        sa.Column("resolution", sa.String(length=1000), nullable=False, server_default=""),
        sa.UniqueConstraint("open_key", name="uq_ticket_groups_open_key"),
    )
    op.create_index("ix_ticket_groups_community_state", "ticket_groups",
                    ["community_id", "state"])
    op.create_table(
        "ticket_group_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.Integer(),
                  sa.ForeignKey("ticket_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_ticket_group_events_group_id", "ticket_group_events", ["group_id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_tickets_group_id_ticket_groups", "ticket_groups", ["group_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index("ix_tickets_group_id", ["group_id"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_group_id")
        batch.drop_constraint("fk_tickets_group_id_ticket_groups", type_="foreignkey")
        batch.drop_column("group_id")
    op.drop_index("ix_ticket_group_events_group_id", table_name="ticket_group_events")
    op.drop_table("ticket_group_events")
    op.drop_index("ix_ticket_groups_community_state", table_name="ticket_groups")
    op.drop_table("ticket_groups")
