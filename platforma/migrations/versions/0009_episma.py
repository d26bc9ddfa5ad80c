"""e-pisma: letters, attachments, register of incoming mail, receipts, replies, exports (issue 5)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa
import platforma.core.db
import platforma.core.settings
from platforma.core.audit import append_only_ddl


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: what was filed is written once: a filed letter's filing columns never change and it is never deleted
_FILED_COLUMNS = ("document_id", "form_code", "form_version", "author_id", "taxpayer_id", "data", "received_at",
                  "signature_kind", "document_sha256", "content_sha256", "verification", "signer_name",
                  "signer_pesel", "signer_nip", "signed_at", "register_year", "register_seq",
                  "registration_number", "stamp_duty")


def _write_once_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        changed = " OR ".join(f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in _FILED_COLUMNS)
        return [
            "CREATE OR REPLACE FUNCTION platforma_letter_filed() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'DELETE' THEN "
            "  IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'a filed letter is never deleted'; END IF; RETURN OLD; "
            "END IF; "
            f"IF OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) THEN "
            "  RAISE EXCEPTION 'what was filed is written once'; END IF; "
            "RETURN NEW; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER letter_filed_write_once BEFORE UPDATE OR DELETE ON letter "
            "FOR EACH ROW EXECUTE FUNCTION platforma_letter_filed()",
        ]
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _FILED_COLUMNS)
    return [
        "CREATE TRIGGER letter_filed_write_once BEFORE UPDATE ON letter "
        f"WHEN OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) "
        "BEGIN SELECT RAISE(ABORT, 'what was filed is written once'); END",
        "CREATE TRIGGER letter_filed_no_delete BEFORE DELETE ON letter WHEN OLD.status <> 'draft' "
        "BEGIN SELECT RAISE(ABORT, 'a filed letter is never deleted'); END",
    ]


def seed_rows(created_at: dt.datetime) -> list[dict]:
    """The dated settings this migration adds: the stamp duty of a tax clearance certificate."""
    return [{'key': 'stamp_duty.tax_clearance_certificate', 'effective_from': dt.date(2007, 1, 1), 'value': '21.00',
             'note': 'ustawa o opłacie skarbowej, załącznik, cz. II pkt 21: zaświadczenie o niezaleganiu w podatkach',
             'created_at': created_at, 'created_by_id': None}]


def upgrade() -> None:
    op.create_table('department',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department')),
    sa.UniqueConstraint('code', name=op.f('uq_department_code'))
    )
    op.create_table('file_code',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_file_code'))
    )
    op.create_table('register_counter',
    sa.Column('register', sa.String(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('register', 'year', name=op.f('pk_register_counter'))
    )
    op.create_table('letter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('form_code', sa.String(length=40), nullable=False),
    sa.Column('form_version', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('taxpayer_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('received_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('signature_kind', sa.String(length=8), nullable=True),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('verification', sa.JSON(), nullable=False),
    sa.Column('signer_name', sa.String(length=300), nullable=False),
    sa.Column('signer_pesel', sa.String(length=11), nullable=True),
    sa.Column('signer_nip', sa.String(length=10), nullable=True),
    sa.Column('signed_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('register_year', sa.Integer(), nullable=True),
    sa.Column('register_seq', sa.Integer(), nullable=True),
    sa.Column('registration_number', sa.String(length=60), nullable=True),
    sa.Column('stamp_duty', platforma.core.db.Money(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('file_code', sa.String(length=16), nullable=True),
    sa.Column('case_reference', sa.String(length=80), nullable=False),
    sa.Column('receipt_issued_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("signature_kind IS NULL OR signature_kind IN ('xades', 'pades')", name=op.f('ck_letter_signature_kind')),
    sa.CheckConstraint("status = 'draft' OR (received_at IS NOT NULL AND registration_number IS NOT NULL AND document_sha256 IS NOT NULL AND signature_kind IS NOT NULL)", name=op.f('ck_letter_filed_complete')),
    sa.CheckConstraint("status IN ('draft', 'received', 'registered', 'in_progress', 'answered', 'closed')", name=op.f('ck_letter_status')),
    sa.ForeignKeyConstraint(['assignee_id'], ['user_account.id'], name=op.f('fk_letter_assignee_id_user_account')),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_letter_author_id_user_account')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_letter_department_id_department')),
    sa.ForeignKeyConstraint(['file_code'], ['file_code.code'], name=op.f('fk_letter_file_code_file_code')),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_letter_taxpayer_id_taxpayer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter')),
    sa.UniqueConstraint('document_id', name=op.f('uq_letter_document_id')),
    sa.UniqueConstraint('register_year', 'register_seq', name=op.f('uq_letter_register_year_register_seq')),
    sa.UniqueConstraint('registration_number', name=op.f('uq_letter_registration_number'))
    )
    with op.batch_alter_table('letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_letter_author_status', ['author_id', 'status'], unique=False)
        batch_op.create_index('ix_letter_status_received', ['status', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_letter_taxpayer_id'), ['taxpayer_id'], unique=False)

    op.create_table('draft_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_draft_attachment_letter_id_letter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_attachment'))
    )
    with op.batch_alter_table('draft_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draft_attachment_letter_id'), ['letter_id'], unique=False)

    op.create_table('letter_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_letter_event_actor_id_user_account')),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_letter_event_letter_id_letter')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_event'))
    )
    with op.batch_alter_table('letter_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_event_letter_id'), ['letter_id'], unique=False)

    op.create_table('letter_export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('sink', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('requested_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('done_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=300), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f('ck_letter_export_status')),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_letter_export_letter_id_letter')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], name=op.f('fk_letter_export_requested_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_export')),
    sa.UniqueConstraint('letter_id', 'sink', name=op.f('uq_letter_export_letter_id_sink'))
    )
    with op.batch_alter_table('letter_export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_export_letter_id'), ['letter_id'], unique=False)

    op.create_table('reply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sent_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_reply_author_id_user_account')),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_reply_letter_id_letter')),
    sa.ForeignKeyConstraint(['read_by_id'], ['user_account.id'], name=op.f('fk_reply_read_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reply'))
    )
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_letter_id'), ['letter_id'], unique=False)

    op.create_table('letter_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('reply_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('signed', 'content', 'attachment', 'receipt', 'reply_document', 'reply_attachment')", name=op.f('ck_letter_file_role')),
    sa.CheckConstraint("role NOT IN ('reply_document', 'reply_attachment') OR reply_id IS NOT NULL", name=op.f('ck_letter_file_reply_file')),
    sa.CheckConstraint('size >= 0', name=op.f('ck_letter_file_size')),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_letter_file_letter_id_letter')),
    sa.ForeignKeyConstraint(['reply_id'], ['reply.id'], name=op.f('fk_letter_file_reply_id_reply')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_file'))
    )
    with op.batch_alter_table('letter_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_file_letter_id'), ['letter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_letter_file_reply_id'), ['reply_id'], unique=False)
    op.create_table('letter_fee',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['letter_id'], ['letter.id'], name=op.f('fk_letter_fee_letter_id_letter')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_letter_fee_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_fee')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_letter_fee_payment_id'))
    )
    with op.batch_alter_table('letter_fee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_fee_letter_id'), ['letter_id'], unique=False)

    dated_setting = sa.table('dated_setting', sa.column('key', sa.String), sa.column('effective_from', sa.Date),
                             sa.column('value', platforma.core.settings.JSONText), sa.column('note', sa.String),
                             sa.column('created_at', platforma.core.db.UTCDateTime), sa.column('created_by_id', sa.Integer))
    op.bulk_insert(dated_setting, seed_rows(platforma.core.db.utcnow()))
    dialect = op.get_bind().dialect.name
    for table in ('letter_file', 'letter_event'):
        for statement in append_only_ddl(dialect, table):
            op.execute(statement)
    for statement in _write_once_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM dated_setting WHERE key = 'stamp_duty.tax_clearance_certificate'")
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS letter_filed_write_once ON letter")
        op.execute("DROP FUNCTION IF EXISTS platforma_letter_filed()")
    else:
        op.execute("DROP TRIGGER IF EXISTS letter_filed_write_once")
        op.execute("DROP TRIGGER IF EXISTS letter_filed_no_delete")
    with op.batch_alter_table('letter_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_file_reply_id'))
        batch_op.drop_index(batch_op.f('ix_letter_file_letter_id'))

    op.drop_table('letter_fee')
    op.drop_table('letter_file')
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_letter_id'))

    op.drop_table('reply')
    with op.batch_alter_table('letter_export', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_export_letter_id'))

    op.drop_table('letter_export')
    with op.batch_alter_table('letter_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_event_letter_id'))

    op.drop_table('letter_event')
    with op.batch_alter_table('draft_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_draft_attachment_letter_id'))

    op.drop_table('draft_attachment')
    with op.batch_alter_table('letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_taxpayer_id'))
        batch_op.drop_index('ix_letter_status_received')
        batch_op.drop_index('ix_letter_author_status')
        batch_op.drop_index(batch_op.f('ix_letter_assignee_id'))

    op.drop_table('letter')
    op.drop_table('register_counter')
    op.drop_table('file_code')
    op.drop_table('department')
