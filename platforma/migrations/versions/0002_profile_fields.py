"""profile fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:00:46.938999
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('declared_pesel', sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column('declared_nip', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('refund_nrb', sa.String(length=26), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('refund_nrb')
        batch_op.drop_column('declared_nip')
        batch_op.drop_column('declared_pesel')
        batch_op.drop_column('phone')

