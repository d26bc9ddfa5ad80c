"""statement imports: a clerk's uploaded statement file, imported by a job (issue 4)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:10:00
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('statement_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('started_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('entries_done', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'importing', 'done', 'refused', 'failed')", name=op.f('ck_statement_import_status')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], name=op.f('fk_statement_import_uploaded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_import'))
    )
    with op.batch_alter_table('statement_import', schema=None) as batch_op:
        batch_op.create_index('ix_statement_import_uploaded_at', ['uploaded_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('statement_import', schema=None) as batch_op:
        batch_op.drop_index('ix_statement_import_uploaded_at')

    op.drop_table('statement_import')
