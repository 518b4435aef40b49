"""staff: a person works for one or more communities (staff_communities), or for every
one (staff_users.all_communities); staff_users.community_id moves into the new table

Revision ID: 0009_staff_communities
Revises: 0008_ticket_listen
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_staff_communities'
down_revision = '0008_ticket_listen'
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
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('all_communities', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    # Nothing is lost: a person of one community keeps it, one of none kept every one.
    op.execute("INSERT INTO staff_communities (user_id, community_id) "
               "SELECT id, community_id FROM staff_users WHERE community_id IS NOT NULL")
    op.execute("UPDATE staff_users SET all_communities = (community_id IS NULL)")
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_constraint('fk_staff_users_community_id_communities', type_='foreignkey')
        batch.drop_column('community_id')


def downgrade() -> None:
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('community_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_staff_users_community_id_communities', 'communities',
                                 ['community_id'], ['id'], ondelete='SET NULL')
    # One community survives the way down (the smallest id); several cannot.
    op.execute("UPDATE staff_users SET community_id = (SELECT MIN(community_id) "
               "FROM staff_communities WHERE staff_communities.user_id = staff_users.id) "
               "WHERE all_communities = false")
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('all_communities')
    op.drop_index(op.f('ix_staff_communities_community_id'), table_name='staff_communities')
    op.drop_table('staff_communities')
