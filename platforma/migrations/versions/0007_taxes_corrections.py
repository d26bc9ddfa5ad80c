"""taxes: art. 70 archive, second approval of manual postings, overpayment offsets (issue 3)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:00:00
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
