"""callbacks: the missed and abandoned calls worklist (未接来电回拨)

Revision ID: 0019_callback_worklist
Revises: 0018_ticket_groups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0019_callback_worklist"
down_revision = "0018_ticket_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("caller_name", sa.String(length=100), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("missed_count", sa.Integer(), nullable=False),
        sa.Column("first_missed_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_missed_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("missed", sa.JSON(), nullable=False),
        sa.Column("dialled", sa.JSON(), nullable=False),
        sa.Column("done_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("done_by_user_id", sa.Integer(), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=False),
        sa.Column("done_how", sa.String(length=16), nullable=True),
        sa.Column("done_outcome", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("updated_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_callbacks_person_id_people"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["done_by_user_id"], ["staff_users.id"],
                                name=op.f("fk_callbacks_done_by_user_id_staff_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    # One open entry per (community, number, day): two servers cannot both open one.
    op.create_index("uq_callbacks_open", "callbacks", ["community", "number", "day"],
                    unique=True, sqlite_where=sa.text("state = 'open'"),
                    postgresql_where=sa.text("state = 'open'"))
    op.create_index("ix_callbacks_state_day", "callbacks", ["state", "day"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_state_day", table_name="callbacks")
    op.drop_index("uq_callbacks_open", table_name="callbacks")
    op.drop_table("callbacks")
