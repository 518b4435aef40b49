"""staff: a person works for one or more communities (staff_communities), or for every
one (staff_users.all_communities); staff_users.community_id moves into the new table

The old column stays (always NULL from here on, ``StaffUser.legacy_community_id``):
dropping it would rebuild staff_users on SQLite, and the rebuild's DROP TABLE runs the
ON DELETE CASCADE of web sessions, API tokens and on-call overrides.

Revision ID: 0010_staff_communities
Revises: 0009_work_orders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_staff_communities'
down_revision = '0009_work_orders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_communities',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_staff_communities_community_id_communities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_communities_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'community_id', name=op.f('pk_staff_communities'))
    )
    op.create_index(op.f('ix_staff_communities_community_id'), 'staff_communities',
                    ['community_id'], unique=False)
    # A plain ADD COLUMN on SQLite too: batch mode would rebuild the table (see above).
    op.add_column('staff_users', sa.Column('all_communities', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    # Nothing is lost: a person of one community keeps it, one of none kept every one.
    op.execute("INSERT INTO staff_communities (user_id, community_id) "
               "SELECT id, community_id FROM staff_users WHERE community_id IS NOT NULL")
    op.execute("UPDATE staff_users SET all_communities = (community_id IS NULL)")
    op.execute("UPDATE staff_users SET community_id = NULL")


def downgrade() -> None:
    # On SQLite dropping all_communities rebuilds staff_users: sessions, tokens and
    # on-call overrides go with it (take a copy of the database first).
    # One community survives the way down (the smallest id); several cannot.
    op.execute("UPDATE staff_users SET community_id = (SELECT MIN(community_id) "
               "FROM staff_communities WHERE staff_communities.user_id = staff_users.id)")
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('all_communities')
    op.drop_index(op.f('ix_staff_communities_community_id'), table_name='staff_communities')
    op.drop_table('staff_communities')
