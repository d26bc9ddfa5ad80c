"""payments: ePłatności and the rest of issue 4

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:00:00
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
