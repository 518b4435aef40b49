"""tickets: complaint_grade (投诉分级: general / important / major), set for complaints

Revision ID: 0017_complaint_grades
Revises: 0016_ha_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_complaint_grades"
down_revision = "0016_ha_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("complaint_grade", sa.String(length=16), nullable=True))
    # Complaints filed before grades existed are 一般 (general), as a new one is.
    op.execute("UPDATE tickets SET complaint_grade = 'general' WHERE category = 'complaint'")


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("complaint_grade")
