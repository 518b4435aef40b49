"""recordings: the IVR's hint (VM_CATEGORY) kept with each message

Revision ID: 0007_recording_hint
Revises: 0004_tickets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_recording_hint'
down_revision = '0004_tickets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recordings') as batch:
        batch.add_column(sa.Column('ivr_hint', sa.String(length=250), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('recordings') as batch:
        batch.drop_column('ivr_hint')
