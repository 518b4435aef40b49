"""work orders: departments and their people, assignment, 回访, photos, callback tasks

Revision ID: 0009_work_orders
Revises: 0008_ticket_listen
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision = '0009_work_orders'
down_revision = '0008_ticket_listen'
branch_labels = None
depends_on = None

UTC_DT = callcenter.db.base.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'departments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('oncall_role', sa.String(length=16), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['communities.id'],
                                name=op.f('fk_departments_community_id_communities'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
        sa.UniqueConstraint('community_id', 'code', name=op.f('uq_departments_community_id')),
    )
    op.create_table(
        'department_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('head', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name=op.f('fk_department_members_department_id_departments'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'],
                                name=op.f('fk_department_members_user_id_staff_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_department_members')),
        sa.UniqueConstraint('department_id', 'user_id',
                            name=op.f('uq_department_members_department_id')),
    )
    with op.batch_alter_table('department_members') as batch:
        batch.create_index(batch.f('ix_department_members_department_id'), ['department_id'])
        batch.create_index(batch.f('ix_department_members_user_id'), ['user_id'])
    op.create_table(
        'ticket_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('stored_path', sa.String(length=300), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('uploaded_by', sa.String(length=100), nullable=False),
        sa.Column('uploaded_at', UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_ticket_photos_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_photos')),
    )
    with op.batch_alter_table('ticket_photos') as batch:
        batch.create_index(batch.f('ix_ticket_photos_ticket_id'), ['ticket_id'])
    op.create_table(
        'ticket_callbacks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('created_at', UTC_DT, nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('done_at', UTC_DT, nullable=True),
        sa.Column('done_by', sa.String(length=100), nullable=False),
        sa.Column('note', sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_ticket_callbacks_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_callbacks')),
    )
    with op.batch_alter_table('ticket_callbacks') as batch:
        batch.create_index(batch.f('ix_ticket_callbacks_ticket_id'), ['ticket_id'])
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('appointment_at', UTC_DT, nullable=True))
        batch.add_column(sa.Column('common_area', sa.String(length=32), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('followup_score', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('followup_resolved', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('followup_comment', sa.String(length=1000), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('materials', sa.String(length=500), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('cost', sa.Numeric(precision=10, scale=2), nullable=True))
        batch.create_foreign_key(batch.f('fk_tickets_assignee_id_staff_users'), 'staff_users',
                                 ['assignee_id'], ['id'], ondelete='SET NULL')
        batch.create_index(batch.f('ix_tickets_assignee_id'), ['assignee_id'])
        batch.create_unique_constraint(batch.f('uq_tickets_idempotency_key'),
                                       ['idempotency_key'])
    with op.batch_alter_table('ticket_events') as batch:
        batch.add_column(sa.Column('action', sa.String(length=24), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('actor_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('actor_role', sa.String(length=16), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('data', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ticket_events') as batch:
        batch.drop_column('data')
        batch.drop_column('actor_role')
        batch.drop_column('actor_id')
        batch.drop_column('action')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_constraint(batch.f('uq_tickets_idempotency_key'), type_='unique')
        batch.drop_index(batch.f('ix_tickets_assignee_id'))
        batch.drop_constraint(batch.f('fk_tickets_assignee_id_staff_users'), type_='foreignkey')
        for name in ('cost', 'materials', 'followup_comment', 'followup_resolved',
                     'followup_score', 'idempotency_key', 'common_area', 'appointment_at', 'assignee_id'):
            batch.drop_column(name)
    op.drop_table('ticket_callbacks')
    op.drop_table('ticket_photos')
    op.drop_table('department_members')
    op.drop_table('departments')
