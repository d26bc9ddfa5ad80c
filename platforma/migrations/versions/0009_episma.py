"""e-pisma: letters, attachments, register of incoming mail, receipts, replies, exports (issue 5)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
