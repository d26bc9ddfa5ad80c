"""posting payment_ref index: a payment is looked up by its reference before it is posted

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:15:28.165959
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain CREATE INDEX (no batch copy), so the table's append-only triggers stay in place
    op.create_index(op.f('ix_posting_payment_ref'), 'posting', ['payment_ref'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_posting_payment_ref'), table_name='posting')
