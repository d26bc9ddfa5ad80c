"""payments: refunds reported by the gateways (the rest of issue 4)

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
    # a refund the treasury ordered in a gateway's panel, as the gateway reported it (ADR 0011)
    op.create_table('payment_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('gateway_refund_id', sa.String(length=100), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('refunded_on', sa.Date(), nullable=True),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('posted_amount', platforma.core.db.Money(), nullable=True),
    sa.CheckConstraint("state <> 'completed' OR refunded_on IS NOT NULL", name=op.f('ck_payment_refund_completed_refunded_on')),
    sa.CheckConstraint("state IN ('pending', 'completed', 'cancelled')", name=op.f('ck_payment_refund_state')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_refund_amount')),
    sa.CheckConstraint('posted_amount IS NULL OR (posted_amount >= 0 AND posted_amount <= amount)', name=op.f('ck_payment_refund_posted_amount')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_payment_refund_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_refund')),
    sa.UniqueConstraint('gateway', 'gateway_refund_id', name=op.f('uq_payment_refund_gateway_gateway_refund_id'))
    )
    with op.batch_alter_table('payment_refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_refund_payment_id'), ['payment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payment_refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_refund_payment_id'))

    op.drop_table('payment_refund')
