"""outbound: the dialer's campaigns, jobs and attempts; the owners' do-not-call flag;
a call log row's direction (in: the hotline rang; out: the server dialled)

Revision ID: 0020_outbound
Revises: 0019_callback_worklist, 0002_calls
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = "0020_outbound"
down_revision = ("0019_callback_worklist", "0002_calls")  # call_logs is 0002's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_logs") as batch:
        batch.add_column(sa.Column("direction", sa.String(length=3), nullable=False,
                                   server_default="in"))
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("do_not_call", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "outbound_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_campaigns")),
    )
    op.create_table(
        "outbound_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("community", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("due_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("link", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"],
                                name=op.f("fk_outbound_jobs_person_id_people"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["campaign_id"], ["outbound_campaigns.id"],
                                name=op.f("fk_outbound_jobs_campaign_id_outbound_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_outbound_jobs_ticket_id_tickets"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_jobs")),
    )
    op.create_index("ix_outbound_jobs_due", "outbound_jobs", ["state", "due_at"])
    op.create_index("uq_outbound_jobs_key", "outbound_jobs", ["key"], unique=True)
    op.create_index(op.f("ix_outbound_jobs_ticket_id"), "outbound_jobs", ["ticket_id"])
    op.create_index(op.f("ix_outbound_jobs_campaign_id"), "outbound_jobs", ["campaign_id"])
    op.create_table(
        "outbound_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("link", sa.String(length=64), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("started_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["outbound_jobs.id"],
                                name=op.f("fk_outbound_attempts_job_id_outbound_jobs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_attempts")),
    )
    op.create_index(op.f("ix_outbound_attempts_job_id"), "outbound_attempts", ["job_id"])
    op.create_table(
        "outbound_holds",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("held_by", sa.String(length=100), nullable=False),
        sa.Column("held_at", callcenter.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_outbound_holds")),
    )


def downgrade() -> None:
    op.drop_table("outbound_holds")
    op.drop_index(op.f("ix_outbound_attempts_job_id"), table_name="outbound_attempts")
    op.drop_table("outbound_attempts")
    op.drop_index(op.f("ix_outbound_jobs_campaign_id"), table_name="outbound_jobs")
    op.drop_index(op.f("ix_outbound_jobs_ticket_id"), table_name="outbound_jobs")
    op.drop_index("uq_outbound_jobs_key", table_name="outbound_jobs")
    op.drop_index("ix_outbound_jobs_due", table_name="outbound_jobs")
    op.drop_table("outbound_jobs")
    op.drop_table("outbound_campaigns")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("do_not_call")
    with op.batch_alter_table("call_logs") as batch:
        batch.drop_column("direction")
