"""tickets: a voicemail whose triage never completed is marked to be listened to

Revision ID: 0008_ticket_listen
Revises: 0007_recording_hint
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_ticket_listen'
down_revision = '0007_recording_hint'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: on SQLite a batch would rebuild tickets, and the rebuild's DROP
    # TABLE runs ON DELETE CASCADE on ticket_events (every ticket's history was lost).
    op.add_column('tickets', sa.Column('needs_listen', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column('tickets', sa.Column('listen_reason', sa.String(length=64), nullable=False,
                                       server_default=''))
    op.add_column('tickets', sa.Column('listen_notice', sa.String(length=300), nullable=False,
                                       server_default=''))
    op.add_column('tickets', sa.Column('listen_notified_at', sa.DateTime(timezone=True),
                                       nullable=True))
    op.create_index('ix_tickets_needs_listen', 'tickets', ['needs_listen', 'listen_notified_at'])


def downgrade() -> None:
    op.drop_index('ix_tickets_needs_listen', table_name='tickets')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('listen_notified_at')
        batch.drop_column('listen_notice')
        batch.drop_column('listen_reason')
        batch.drop_column('needs_listen')
