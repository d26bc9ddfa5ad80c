"""kept rows: PostgreSQL notifies every process when a row a signed-in request reads has changed

`platforma.core.kept` keeps, per process, the row every signed-in request reads (the session, its
user, the account page's access check and fingerprint) and drops it when a notification on the
channel `platforma_kept` names it: `u<id>` for a user, `t<id>` for a taxpayer, `*` for everything.
The triggers are in the database so that every writer is heard: the app, imports, a clerk's SQL.
Notifications are sent at commit and only then (PostgreSQL), identical ones of a transaction once.

SQLite has no notifications and keeps nothing: this migration does nothing there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:00:00
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

#: (table, tag prefix, the column naming the user or taxpayer) for the row triggers
ROW_TAGS = [
    ("user_account", "u", "id"),
    ("user_session", "u", "user_id"),
    ("taxpayer_access", "u", "user_id"),
    ("taxpayer", "t", "id"),
    ("liability_party", "t", "taxpayer_id"),
]
#: every table with a trigger here: what a kept row may be read from (`core.kept.COVERED`)
TABLES = [table for table, _prefix, _column in ROW_TAGS] + ["liability", "posting", "dated_setting"]
#: more taxpayers than this in one statement's postings: one notification for everything instead
MANY = 1000

FUNCTIONS = {
    # a row of a user's or a taxpayer's: the tag of its new and of its old owner
    "platforma_kept_changed": """
CREATE OR REPLACE FUNCTION platforma_kept_changed() RETURNS trigger AS $$
DECLARE tag_new text; tag_old text;
BEGIN
  IF TG_OP <> 'DELETE' THEN
    tag_new := TG_ARGV[0] || (to_jsonb(NEW) ->> TG_ARGV[1]);
    IF tag_new IS NOT NULL THEN PERFORM pg_notify('platforma_kept', tag_new); END IF;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    tag_old := TG_ARGV[0] || (to_jsonb(OLD) ->> TG_ARGV[1]);
    IF tag_old IS NOT NULL AND tag_old IS DISTINCT FROM tag_new THEN PERFORM pg_notify('platforma_kept', tag_old); END IF;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    # a liability changed in place (also when an installment, its decision or a limitation event raised
    # its revision, migrations 0005 and 0007): every taxpayer liable for it
    "platforma_kept_liability": """
CREATE OR REPLACE FUNCTION platforma_kept_liability() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('platforma_kept', 't' || taxpayer_id)
    FROM (SELECT DISTINCT taxpayer_id FROM liability_party WHERE liability_id = OLD.id) parties;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    # new postings (one statement, however many rows): the taxpayers of their liabilities and the
    # owners of loose ones
    "platforma_kept_postings": f"""
CREATE OR REPLACE FUNCTION platforma_kept_postings() RETURNS trigger AS $$
DECLARE tags text[];
BEGIN
  SELECT array_agg(tag) INTO tags FROM (
    SELECT 't' || taxpayer_id AS tag FROM kept_new_postings WHERE taxpayer_id IS NOT NULL
    UNION
    SELECT 't' || p.taxpayer_id FROM liability_party p
      WHERE p.liability_id IN (SELECT liability_id FROM kept_new_postings WHERE liability_id IS NOT NULL)
  ) changed;
  IF tags IS NULL THEN RETURN NULL; END IF;
  IF array_length(tags, 1) > {MANY} THEN
    PERFORM pg_notify('platforma_kept', '*');
  ELSE
    PERFORM pg_notify('platforma_kept', tag) FROM unnest(tags) AS tag;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
    # the dated settings (interest rates, threshold), TRUNCATE: everything
    "platforma_kept_all": """
CREATE OR REPLACE FUNCTION platforma_kept_all() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('platforma_kept', '*');
  RETURN NULL;
END $$ LANGUAGE plpgsql""",
}


def _triggers() -> list[tuple[str, str, str]]:
    """(name, table, the rest of CREATE TRIGGER name ON table ...)"""
    found = [
        (f"{table}_kept", table, f"AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW "
                                 f"EXECUTE FUNCTION platforma_kept_changed('{prefix}', '{column}')")
        for table, prefix, column in ROW_TAGS
    ]
    found += [
        ("liability_kept", "liability",
         "AFTER UPDATE OR DELETE ON liability FOR EACH ROW EXECUTE FUNCTION platforma_kept_liability()"),
        ("posting_kept", "posting",
         "AFTER INSERT ON posting REFERENCING NEW TABLE AS kept_new_postings FOR EACH STATEMENT "
         "EXECUTE FUNCTION platforma_kept_postings()"),
        ("dated_setting_kept", "dated_setting",
         "AFTER INSERT OR UPDATE OR DELETE ON dated_setting FOR EACH STATEMENT EXECUTE FUNCTION platforma_kept_all()"),
    ]
    found += [(f"{table}_kept_truncate", table,
               f"AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION platforma_kept_all()")
              for table in TABLES]
    return found


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in FUNCTIONS.values():
        op.execute(sql)
    for name, table, rest in _triggers():
        op.execute(f"CREATE TRIGGER {name} {rest}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _rest in _triggers():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
