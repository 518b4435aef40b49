"""calls: the call log

Revision ID: 0002_calls
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0002_calls"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("asterisk", sa.String(length=64), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=True),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("caller_name", sa.String(length=100), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("did", sa.String(length=32), nullable=True),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("rung", sa.JSON(), nullable=False),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.Column("started_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("wait_s", sa.Float(), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_call_logs_person_id_people"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_logs")),
        sa.UniqueConstraint("asterisk", "linkedid", name=op.f("uq_call_logs_asterisk")),
    )
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.create_index("ix_call_logs_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_call_logs_caller_number", ["caller_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_call_logs_caller_number")
        batch_op.drop_index("ix_call_logs_started_at")
    op.drop_table("call_logs")
