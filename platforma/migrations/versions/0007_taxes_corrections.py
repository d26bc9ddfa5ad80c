"""taxes: art. 70 archive, second approval of manual postings, overpayment offsets (issue 3)

- limitation_record: what a clerk recorded about a liability's limitation period (art. 70 OP:
  przerwanie, zawieszenie and its end, zabezpieczenie); append-only, and each new record raises the
  liability's revision so that the account page shows the new limitation date at once (ADR 0010).
- posting_proposal: a manual posting waiting for a second clerk ([taxes] manual_posting_approval).

New tables only: liability, installment and decision are not rebuilt, so the triggers of 0005 stay.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:00:00
"""
from alembic import op
import sqlalchemy as sa
import platforma.core.db
from platforma.core.audit import append_only_ddl


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

#: a new limitation record changes what the account shows (the limitation date): raise the revision
REVISED = {
    "postgresql": [
        "CREATE OR REPLACE FUNCTION platforma_limitation_revised() RETURNS trigger AS $$ "
        "BEGIN UPDATE liability SET revision = revision + 1 WHERE id = NEW.liability_id; RETURN NULL; END; "
        "$$ LANGUAGE plpgsql",
        "CREATE TRIGGER limitation_revised AFTER INSERT ON limitation_record FOR EACH ROW "
        "EXECUTE FUNCTION platforma_limitation_revised()",
    ],
    "sqlite": [
        "CREATE TRIGGER limitation_revised AFTER INSERT ON limitation_record FOR EACH ROW "
        "BEGIN UPDATE liability SET revision = revision + 1 WHERE id = NEW.liability_id; END",
    ],
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table('limitation_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('ends_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('przerwanie', 'zawieszenie', 'koniec_zawieszenia', 'zabezpieczenie')", name=op.f('ck_limitation_record_kind')),
    sa.CheckConstraint("kind <> 'koniec_zawieszenia' OR ends_id IS NOT NULL", name=op.f('ck_limitation_record_ends_suspension')),
    sa.CheckConstraint("trim(reason) <> ''", name=op.f('ck_limitation_record_reason')),
    sa.CheckConstraint("until IS NULL OR (kind = 'zawieszenie' AND until >= occurred_on)", name=op.f('ck_limitation_record_until')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_limitation_record_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['ends_id'], ['limitation_record.id'], name=op.f('fk_limitation_record_ends_id_limitation_record')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_limitation_record_liability_id_liability')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_limitation_record'))
    )
    with op.batch_alter_table('limitation_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_limitation_record_liability_id'), ['liability_id'], unique=False)

    op.create_table('posting_proposal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taxpayer_id', sa.Integer(), nullable=False),
    sa.Column('liability_id', sa.Integer(), nullable=True),
    sa.Column('installment_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', platforma.core.db.Money(), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=False),
    sa.Column('proposed_at', platforma.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', platforma.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('posting_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("state <> 'rejected' OR trim(decision_reason) <> ''", name=op.f('ck_posting_proposal_rejection_reason')),
    sa.CheckConstraint("state = 'proposed' OR decided_by_id IS NOT NULL", name=op.f('ck_posting_proposal_decided')),
    sa.CheckConstraint("state IN ('proposed', 'approved', 'rejected')", name=op.f('ck_posting_proposal_state')),
    sa.CheckConstraint("trim(reason) <> ''", name=op.f('ck_posting_proposal_reason')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_posting_proposal_amount')),
    sa.CheckConstraint('decided_by_id IS NULL OR decided_by_id <> proposed_by_id', name=op.f('ck_posting_proposal_four_eyes')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_posting_proposal_decided_by_id_user_account')),
    sa.ForeignKeyConstraint(['installment_id'], ['installment.id'], name=op.f('fk_posting_proposal_installment_id_installment')),
    sa.ForeignKeyConstraint(['liability_id'], ['liability.id'], name=op.f('fk_posting_proposal_liability_id_liability')),
    sa.ForeignKeyConstraint(['posting_id'], ['posting.id'], name=op.f('fk_posting_proposal_posting_id_posting')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['user_account.id'], name=op.f('fk_posting_proposal_proposed_by_id_user_account')),
    sa.ForeignKeyConstraint(['taxpayer_id'], ['taxpayer.id'], name=op.f('fk_posting_proposal_taxpayer_id_taxpayer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting_proposal')),
    sa.UniqueConstraint('posting_id', name=op.f('uq_posting_proposal_posting_id'))
    )
    with op.batch_alter_table('posting_proposal', schema=None) as batch_op:
        batch_op.create_index('ix_posting_proposal_state', ['state', 'proposed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_posting_proposal_taxpayer_id'), ['taxpayer_id'], unique=False)

    # the record of art. 70 events is append-only in the database too (DESIGN.md, rule 4)
    for statement in append_only_ddl(dialect, 'limitation_record') + REVISED[dialect]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS limitation_revised ON limitation_record")
        op.execute("DROP FUNCTION IF EXISTS platforma_limitation_revised()")
    else:
        op.execute("DROP TRIGGER IF EXISTS limitation_revised")
    with op.batch_alter_table('posting_proposal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posting_proposal_taxpayer_id'))
        batch_op.drop_index('ix_posting_proposal_state')
    op.drop_table('posting_proposal')
    with op.batch_alter_table('limitation_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_limitation_record_liability_id'))
    op.drop_table('limitation_record')
