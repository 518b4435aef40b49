"""console: agents' states in the database, shared by the servers of a cluster

Revision ID: 0011_agent_states
Revises: 0010_staff_communities
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0011_agent_states"
down_revision = "0010_staff_communities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("since", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("server", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"],
                                name=op.f("fk_agent_states_user_id_staff_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_states")),
    )


def downgrade() -> None:
    op.drop_table("agent_states")
