"""payments by the day of payment (the daily report, a gateway's payout on a statement); statement lines by
the payer's account (the taxpayers earlier credits from it went to); the day a credit to return was
sent back (issue 4)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index('ix_payment_paid_on', ['paid_on'], unique=False)
    with op.batch_alter_table('statement_line', schema=None) as batch_op:
        batch_op.create_index('ix_statement_line_counterparty_account', ['counterparty_account'], unique=False)
        batch_op.add_column(sa.Column('sent_back_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('statement_line', schema=None) as batch_op:
        batch_op.drop_column('sent_back_on')
        batch_op.drop_index('ix_statement_line_counterparty_account')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_paid_on')
