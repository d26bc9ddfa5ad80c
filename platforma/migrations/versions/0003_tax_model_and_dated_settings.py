"""tax model and dated settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 03:24:27.867899

Tax objects, decisions, liabilities with their parties, bases and installments, the append-only
ledger (posting), and dated settings seeded with the interest-rate table, the interest threshold
and the reminder cost.
"""
import csv
import datetime as dt
import io
from importlib import resources

from alembic import op
import sqlalchemy as sa
import platforma.core.db
import platforma.core.settings
import platforma.taxes.models
from platforma.core.audit import append_only_ddl


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('document_type', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('delivered_on', sa.Date(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("document_type <> 'decyzja' OR issued_on IS NOT NULL", name=op.f('ck_decision_decision_issued')),
    sa.CheckConstraint("document_type IN ('decyzja', 'deklaracja', 'informacja')", name=op.f('ck_decision_document_type')),
    sa.CheckConstraint("number <> ''", name=op.f('ck_decision_numbered')),
    sa.CheckConstraint('issued_on IS NULL OR delivered_on IS NULL OR delivered_on >= issued_on', name=op.f('ck_decision_delivered_after_issue')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision')),
    sa.UniqueConstraint('source', 'number', name=op.f('uq_decision_source_number')),
    sa.UniqueConstraint('source', 'source_key', name=op.f('uq_decision_source_source_key'))
    )
    op.create_table('tax_object',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('registration_number', sa.String(length=16), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('grunt', 'budynek', 'budowla', 'grunt_rolny', 'las', 'pojazd', 'lokal_odpady')", name=op.f('ck_tax_object_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_object')),
    sa.UniqueConstraint('source', 'source_key', name=op.f('uq_tax_object_source_source_key'))
    )
    dated_setting = op.create_table('dated_setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('value', platforma.core.settings.JSONText(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("key <> ''", name=op.f('ck_dated_setting_key')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_dated_setting_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dated_setting')),
    sa.UniqueConstraint('key', 'effective_from', name=op.f('uq_dated_setting_key_effective_from'))
    )
    op.create_table('liability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=True),
    sa.Column('tax_kind', sa.String(length=24), nullable=False),
    sa.Column('payer_type', sa.String(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("payer_type IN ('natural', 'legal')", name=op.f('ck_liability_payer_type')),
    sa.CheckConstraint("tax_kind IN ('nieruchomosci', 'rolny', 'lesny', 'laczne', 'srodki_transportowe', 'odpady')", name=op.f('ck_liability_tax_kind')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_liability_amount')),
    sa.CheckConstraint('period_from <= period_to', name=op.f('ck_liability_period')),
    sa.ForeignKeyConstraint(['decision_id'], ['decision.id'], name=op.f('fk_liability_decision_id_decision')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_liability')),
    sa.UniqueConstraint('source', 'source_key', name=op.f('uq_liability_source_source_key'))
    )
    with op.batch_alter_table('liability', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_liability_decision_id'), ['decision_id'], unique=False)

    op.create_table('installment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_installment_amount')),
    sa.CheckConstraint('number >= 1', name=op.f('ck_installment_number')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_installment_liability_id_liability'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_installment')),
    sa.UniqueConstraint('liability_id', 'number', name=op.f('uq_installment_liability_id_number'))
    )
    with op.batch_alter_table('installment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_installment_due_on'), ['due_on'], unique=False)

    op.create_table('liability_basis',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=False),
    sa.Column('tax_object_id', sa.Integer(), nullable=False),
    sa.Column('basis', platforma.taxes.models.Quantity(), nullable=False),
    sa.Column('unit', sa.String(length=24), nullable=False),
    sa.Column('rate', platforma.taxes.models.Quantity(), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.CheckConstraint("unit IN ('m2', 'ha', 'ha_przeliczeniowe', 'szt', 'osoba')", name=op.f('ck_liability_basis_unit')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_liability_basis_amount')),
    sa.CheckConstraint('basis >= 0', name=op.f('ck_liability_basis_basis')),
    sa.CheckConstraint('rate >= 0', name=op.f('ck_liability_basis_rate')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_liability_basis_liability_id_liability'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tax_object_id'], ['tax_object.id'], name=op.f('fk_liability_basis_tax_object_id_tax_object')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_liability_basis')),
    sa.UniqueConstraint('liability_id', 'tax_object_id', name=op.f('uq_liability_basis_liability_id_tax_object_id'))
    )
    with op.batch_alter_table('liability_basis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_liability_basis_tax_object_id'), ['tax_object_id'], unique=False)

    op.create_table('liability_party',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=False),
    sa.Column('taxpayer_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.CheckConstraint("role IN ('principal', 'co_owner')", name=op.f('ck_liability_party_role')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_liability_party_liability_id_liability'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_liability_party_taxpayer_id_taxpayer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_liability_party')),
    sa.UniqueConstraint('liability_id', 'taxpayer_id', name=op.f('uq_liability_party_liability_id_taxpayer_id'))
    )
    with op.batch_alter_table('liability_party', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_liability_party_taxpayer_id'), ['taxpayer_id'], unique=False)
        batch_op.create_index('uq_liability_party_principal', ['liability_id'], unique=True, sqlite_where=sa.text("role = 'principal'"), postgresql_where=sa.text("role = 'principal'"))

    op.create_table('posting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taxpayer_id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=True),
    sa.Column('installment_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('payment_ref', sa.String(length=100), nullable=True),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=100), nullable=True),
    sa.CheckConstraint("amount > 0 OR (kind = 'korekta' AND amount <> 0)", name=op.f('ck_posting_amount')),
    sa.CheckConstraint("kind <> 'korekta' OR corrects_id IS NOT NULL", name=op.f('ck_posting_korekta_corrects')),
    sa.CheckConstraint("kind IN ('przypis', 'odsetki', 'koszty_upomnienia', 'zwrot', 'odpis', 'wplata', 'nadplata', 'korekta')", name=op.f('ck_posting_kind')),
    sa.CheckConstraint("kind NOT IN ('przypis', 'odpis', 'odsetki') OR liability_id IS NOT NULL", name=op.f('ck_posting_liability_required')),
    sa.CheckConstraint("origin <> 'import' OR source_key IS NOT NULL", name=op.f('ck_posting_import_key')),
    sa.CheckConstraint("origin <> 'manual' OR trim(reason) <> ''", name=op.f('ck_posting_manual_reason')),
    sa.CheckConstraint("origin IN ('system', 'manual', 'import')", name=op.f('ck_posting_origin')),
    sa.CheckConstraint('installment_id IS NULL OR liability_id IS NOT NULL', name=op.f('ck_posting_installment_liability')),
    sa.ForeignKeyConstraint(['corrects_id'], ['posting.id'], name=op.f('fk_posting_corrects_id_posting')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_posting_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['installment_id'], ['installment.id'], name=op.f('fk_posting_installment_id_installment')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_posting_liability_id_liability')),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_posting_taxpayer_id_taxpayer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting')),
    sa.UniqueConstraint('source', 'source_key', name=op.f('uq_posting_source_source_key'))
    )
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posting_corrects_id'), ['corrects_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posting_installment_id'), ['installment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posting_liability_id'), ['liability_id'], unique=False)
        batch_op.create_index('ix_posting_taxpayer_value_date', ['taxpayer_id', 'value_date'], unique=False)

    # the ledger is append-only (DESIGN.md, rule 4): the database refuses UPDATE and DELETE
    for statement in append_only_ddl(op.get_bind().dialect.name, 'posting'):
        op.execute(statement)

    op.bulk_insert(dated_setting, seed_rows(platforma.core.db.utcnow()))


# Rates published after this day are added by an administrator or a later migration: reading the
# package's CSV up to a fixed day keeps this migration's result the same whenever it runs.
SEED_UNTIL = dt.date(2026, 3, 5)


def seed_rows(created_at: dt.datetime) -> list[dict]:
    """The dated settings this migration adds, oldest first within each key."""
    text = resources.files('platforma.taxes.data').joinpath('interest_rates.csv').read_text(encoding='utf-8')
    rates = sorted(csv.DictReader(io.StringIO(text)), key=lambda row: row['effective_from'])
    rows = [
        {'key': 'interest.standard_rate', 'effective_from': dt.date.fromisoformat(row['effective_from']),
         'value': row['rate_percent'], 'note': row['source_note']}
        for row in rates
        if dt.date.fromisoformat(row['effective_from']) <= SEED_UNTIL
    ]
    rows.append({
        'key': 'interest.threshold', 'effective_from': dt.date(2014, 1, 1), 'value': '8.70',
        # 3 x the designated operator's registered-letter surcharge; the start date is an assumption
        'note': 'art. 54 § 1 pkt 5 OP: 3 x opłata za polecenie (2,90 zł); data początkowa przyjęta',
    })
    rows.append({
        'key': 'reminder.cost', 'effective_from': dt.date(2024, 1, 1), 'value': '16.00',
        # ASSUMPTION: 16.00 zł replaced 11.60 zł (Dz.U. 2015 poz. 1526) on a day not verified here;
        # 2024-01-01 is a safe start for current reminders, not the legal date
        'note': 'art. 15 § 4 u.p.e.a., rozporządzenie MF o kosztach upomnienia; data początkowa do sprawdzenia',
    })
    return [dict(row, created_at=created_at, created_by_id=None) for row in rows]


def downgrade() -> None:
    # dropping the table drops its append-only triggers too
    with op.batch_alter_table('posting', schema=None) as batch_op:
        batch_op.drop_index('ix_posting_taxpayer_value_date')
        batch_op.drop_index(batch_op.f('ix_posting_liability_id'))
        batch_op.drop_index(batch_op.f('ix_posting_installment_id'))
        batch_op.drop_index(batch_op.f('ix_posting_corrects_id'))

    op.drop_table('posting')
    with op.batch_alter_table('liability_party', schema=None) as batch_op:
        batch_op.drop_index('uq_liability_party_principal', sqlite_where=sa.text("role = 'principal'"), postgresql_where=sa.text("role = 'principal'"))
        batch_op.drop_index(batch_op.f('ix_liability_party_taxpayer_id'))

    op.drop_table('liability_party')
    with op.batch_alter_table('liability_basis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_liability_basis_tax_object_id'))

    op.drop_table('liability_basis')
    with op.batch_alter_table('installment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_installment_due_on'))

    op.drop_table('installment')
    with op.batch_alter_table('liability', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_liability_decision_id'))

    op.drop_table('liability')
    op.drop_table('dated_setting')
    op.drop_table('tax_object')
    op.drop_table('decision')
