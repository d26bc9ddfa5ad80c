"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:41:01.027124
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db
from platforma.core.audit import append_only_ddl


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f('ck_outbox_job_status')),
    sa.CheckConstraint('attempts >= 0 AND attempts <= max_attempts', name=op.f('ck_outbox_job_attempts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_job'))
    )
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_job_due', ['status', 'run_after'], unique=False)

    op.create_table('taxpayer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('pesel', sa.String(length=11), nullable=True),
    sa.Column('nip', sa.String(length=10), nullable=True),
    sa.Column('regon', sa.String(length=14), nullable=True),
    sa.Column('street', sa.String(length=200), nullable=False),
    sa.Column('postal_code', sa.String(length=6), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'natural' AND last_name <> '') OR (kind = 'legal' AND name <> '')", name=op.f('ck_taxpayer_named')),
    sa.CheckConstraint("kind = 'natural' OR nip IS NOT NULL", name=op.f('ck_taxpayer_legal_has_nip')),
    sa.CheckConstraint("kind IN ('natural', 'legal')", name=op.f('ck_taxpayer_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_taxpayer')),
    sa.UniqueConstraint('pesel', name=op.f('uq_taxpayer_pesel')),
    sa.UniqueConstraint('source', 'source_key', name=op.f('uq_taxpayer_source_source_key'))
    )
    with op.batch_alter_table('taxpayer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taxpayer_nip'), ['nip'], unique=False)

    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('password_changed_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('email_confirmed_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_confirmed_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=5), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('resident', 'clerk', 'admin')", name=op.f('ck_user_account_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('taxpayer_id', sa.Integer(), nullable=True),
    sa.Column('on_behalf_of_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_audit_entry_actor_id_user_account')),
    sa.ForeignKeyConstraint(['on_behalf_of_id'], ['taxpayer.id'], name=op.f('fk_audit_entry_on_behalf_of_id_taxpayer')),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_audit_entry_taxpayer_id_taxpayer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_taxpayer_id'), ['taxpayer_id'], unique=False)

    op.create_table('legal_page_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("slug IN ('deklaracja-dostepnosci', 'regulamin', 'rodo')", name=op.f('ck_legal_page_version_slug')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_legal_page_version_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_page_version')),
    sa.UniqueConstraint('slug', 'version', name=op.f('uq_legal_page_version_slug_version'))
    )
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_login_attempt_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_user_at', ['user_id', 'at'], unique=False)

    op.create_table('taxpayer_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('taxpayer_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('revoked_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("relation IN ('self', 'representative')", name=op.f('ck_taxpayer_access_relation')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['user_account.id'], name=op.f('fk_taxpayer_access_granted_by_id_user_account')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['user_account.id'], name=op.f('fk_taxpayer_access_revoked_by_id_user_account')),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_taxpayer_access_taxpayer_id_taxpayer')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_taxpayer_access_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_taxpayer_access'))
    )
    with op.batch_alter_table('taxpayer_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_taxpayer_access_taxpayer_id'), ['taxpayer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_taxpayer_access_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_taxpayer_access_active', ['user_id', 'taxpayer_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))

    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_session_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    # history is append-only (DESIGN.md, rule 4): the database refuses UPDATE and DELETE
    dialect = op.get_bind().dialect.name
    for table in ("audit_entry", "login_attempt", "legal_page_version"):
        for statement in append_only_ddl(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))

    op.drop_table('user_session')
    with op.batch_alter_table('taxpayer_access', schema=None) as batch_op:
        batch_op.drop_index('uq_taxpayer_access_active', sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_taxpayer_access_user_id'))
        batch_op.drop_index(batch_op.f('ix_taxpayer_access_taxpayer_id'))

    op.drop_table('taxpayer_access')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_user_at')
        batch_op.drop_index('ix_login_attempt_ip_at')

    op.drop_table('login_attempt')
    op.drop_table('legal_page_version')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_taxpayer_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_action'))

    op.drop_table('audit_entry')
    op.drop_table('user_account')
    with op.batch_alter_table('taxpayer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_taxpayer_nip'))

    op.drop_table('taxpayer')
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_job_due')

    op.drop_table('outbox_job')
