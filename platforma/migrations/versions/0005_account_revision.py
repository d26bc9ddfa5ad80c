"""account revision: liability.revision raised by triggers, an index of the postings outside liabilities

The account page keeps its rendering while nothing it shows has changed (platforma.taxes.views).
Postings are append-only, so their count tells whether any was added; what can change in place is
a liability, its installments and its decision, and the triggers below raise `liability.revision`
whenever one of them does (in the database, so that every writer is covered: the app, imports,
a clerk's SQL). They lock only the liability concerned, never a taxpayer, so they add no lock to
the posting of payments.

A later migration that rebuilds liability, installment or decision on SQLite (batch mode copies
the table) must create these triggers again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

POSTGRESQL = [
    # a change of the liability itself (not the raise below, which changes the revision)
    "CREATE OR REPLACE FUNCTION platforma_liability_revised() RETURNS trigger AS $$ "
    "BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER liability_revised BEFORE UPDATE ON liability FOR EACH ROW "
    "WHEN (NEW.revision = OLD.revision) EXECUTE FUNCTION platforma_liability_revised()",
    "CREATE OR REPLACE FUNCTION platforma_installment_revised() RETURNS trigger AS $$ "
    "BEGIN "
    "IF TG_OP <> 'INSERT' THEN UPDATE liability SET revision = revision + 1 WHERE id = OLD.liability_id; END IF; "
    "IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.liability_id <> OLD.liability_id) THEN "
    "UPDATE liability SET revision = revision + 1 WHERE id = NEW.liability_id; END IF; "
    "RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER installment_revised AFTER INSERT OR UPDATE OR DELETE ON installment FOR EACH ROW "
    "EXECUTE FUNCTION platforma_installment_revised()",
    "CREATE OR REPLACE FUNCTION platforma_decision_revised() RETURNS trigger AS $$ "
    "BEGIN UPDATE liability SET revision = revision + 1 WHERE decision_id = NEW.id; RETURN NULL; END; "
    "$$ LANGUAGE plpgsql",
    "CREATE TRIGGER decision_revised AFTER UPDATE ON decision FOR EACH ROW EXECUTE FUNCTION platforma_decision_revised()",
]

SQLITE = [
    "CREATE TRIGGER liability_revised AFTER UPDATE ON liability FOR EACH ROW WHEN NEW.revision = OLD.revision "
    "BEGIN UPDATE liability SET revision = OLD.revision + 1 WHERE id = NEW.id; END",
    "CREATE TRIGGER installment_revised_insert AFTER INSERT ON installment FOR EACH ROW "
    "BEGIN UPDATE liability SET revision = revision + 1 WHERE id = NEW.liability_id; END",
    "CREATE TRIGGER installment_revised_update AFTER UPDATE ON installment FOR EACH ROW "
    "BEGIN UPDATE liability SET revision = revision + 1 WHERE id IN (OLD.liability_id, NEW.liability_id); END",
    "CREATE TRIGGER installment_revised_delete AFTER DELETE ON installment FOR EACH ROW "
    "BEGIN UPDATE liability SET revision = revision + 1 WHERE id = OLD.liability_id; END",
    "CREATE TRIGGER decision_revised AFTER UPDATE ON decision FOR EACH ROW "
    "BEGIN UPDATE liability SET revision = revision + 1 WHERE decision_id = NEW.id; END",
]

#: (trigger, table) as created above, for dropping them
TRIGGERS = {
    "postgresql": [("liability_revised", "liability"), ("installment_revised", "installment"),
                   ("decision_revised", "decision")],
    "sqlite": [("liability_revised", "liability"), ("installment_revised_insert", "installment"),
               ("installment_revised_update", "installment"), ("installment_revised_delete", "installment"),
               ("decision_revised", "decision")],
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # ADD COLUMN with a constant default: no table rewrite on PostgreSQL, no batch copy on SQLite
    op.add_column('liability', sa.Column('revision', sa.BigInteger(), server_default='0', nullable=False))
    # a plain CREATE INDEX (no batch copy), so the posting table's append-only triggers stay in place
    op.create_index('ix_posting_taxpayer_loose', 'posting', ['taxpayer_id'], unique=False,
                    sqlite_where=sa.text('liability_id IS NULL'), postgresql_where=sa.text('liability_id IS NULL'))
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for trigger, table in TRIGGERS["postgresql" if dialect == "postgresql" else "sqlite"]:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        for function in ("platforma_liability_revised", "platforma_installment_revised", "platforma_decision_revised"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_index('ix_posting_taxpayer_loose', table_name='posting',
                  sqlite_where=sa.text('liability_id IS NULL'), postgresql_where=sa.text('liability_id IS NULL'))
    with op.batch_alter_table('liability', schema=None) as batch_op:
        batch_op.drop_column('revision')
