"""Importing a large bank statement: parse, match and post, as a ratio against a bare iterparse of the same file.

    python -m bench.reconciliation --database postgresql://postgres@127.0.0.1:5432/bench_300k

Against a gmina loaded by `bench.generate`: writes a camt.053.001.02 statement of `--entries` entries
(and one of `--small-entries`, for the memory check) with `bench.statement_file.write_camt053`, drawn
from the gmina itself: credits to the individual accounts of random taxpayers (the layout in
`LAYOUT`), credits whose title names a decision, a PESEL or a NIP, credits nobody can match, and
debits. Then, each in a fresh child process (its own peak RSS):

* `iterparse`: `bare_iterparse_count` of the file, the baseline (best of `--baseline-runs`);
* `parse`: `iter_statement` alone (the platform's hardened parser), to show where the time goes;
* `import`: `reconciliation.import_statement` of the file, as `platforma payments import-statement`
  calls it, in one transaction that is **rolled back** at the end, so the gmina is left as it was.
  If the gmina predates the payments tables, they are created from the models inside that same
  transaction (and so rolled back with it).

Prints and writes entries/s of each, the ratio import / iterparse on the same file (target >= 0.25),
peak RSS of the import at both sizes (target: flat, not growing with the file) and the import's
own checks (every entry stored once, what was posted adds up to the matched credits).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from bench.common import RESULTS_DIR, gmina_size, host, load_average, log, write_results
from bench.reminders_run import Sampler, rss_mb
from bench.statement_file import EntryRow, bare_iterparse_count, write_camt053
from platforma.payments.rules import VirtualAccountLayout

ROOT = Path(__file__).resolve().parents[1]
RESULTS = RESULTS_DIR / "reconciliation.json"
#: the requirement (issue 4): parse, match and post at >= 25 % of a bare iterparse; memory flat
TARGET_RATIO = 0.25
#: the individual accounts of the benchmark's gmina (the demo instance's layout)
LAYOUT = VirtualAccountLayout("90900004", "2001")
GMINA_NRB = "49909000042001000000001234"
#: the statement's first day: the day after the generated ledger's `LEDGER_AS_OF`
FIRST_DAY = dt.date(2026, 11, 23)
DAYS = 5
#: what the entries are, by share: matched by the account credited, by a decision number, a PESEL
#: or a NIP in the title; credits no rule matches; debits
MIX = (("account", 0.88), ("decision", 0.03), ("pesel", 0.03), ("nip", 0.01), ("unmatched", 0.03), ("debit", 0.02))
TITLES = ("Podatek od nieruchomości 2026", "Opłata za gospodarowanie odpadami IV kw. 2026",
          "podatek rolny rata IV", "Wpłata na rachunek podatkowy", "zaległy podatek")
PAYERS = ("JAN KOWALSKI", "ANNA NOWAK", "PIOTR WIŚNIEWSKI", "MARIA WÓJCIK", "ZAKŁAD USŁUG SP. Z O.O.")
PAYER_ACCOUNT = "61109010140000071219812874"
TICK = os.sysconf("SC_CLK_TCK")


# -- the statement -----------------------------------------------------------------------------------

def sample(database: str) -> dict[str, Any]:
    """What the titles name, taken from the gmina: taxpayer ids, PESELs, NIPs, decision numbers."""
    import sqlalchemy as sa

    from platforma.core.db import make_engine

    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.text("SELECT max(id) FROM taxpayer")).scalar_one()
            if not top:
                raise SystemExit("no taxpayers in the database: load a gmina with bench.generate")
            pesels = list(conn.execute(sa.text(
                "SELECT pesel FROM taxpayer WHERE pesel IS NOT NULL AND id % 53 = 0 ORDER BY id LIMIT 5000")).scalars())
            nips = list(conn.execute(sa.text(
                "SELECT nip FROM taxpayer WHERE nip IS NOT NULL AND id % 53 = 0 ORDER BY id LIMIT 2000")).scalars())
            decisions = list(conn.execute(sa.text(
                "SELECT number FROM decision WHERE id % 97 = 0 ORDER BY id LIMIT 5000")).scalars())
    finally:
        engine.dispose()
    return {"taxpayers": top, "pesels": pesels, "nips": nips, "decisions": decisions}


def entries(count: int, names: dict[str, Any], seed: int) -> Iterator[EntryRow]:
    """The statement's entries, in booking order over `DAYS` days; a pure function of the arguments."""
    rnd = random.Random(seed)
    kinds = [kind for kind, _ in MIX]
    weights = [share for _, share in MIX]
    for n in range(count):
        day = FIRST_DAY + dt.timedelta(days=n * DAYS // count)
        kind = rnd.choices(kinds, weights)[0]
        amount = Decimal(rnd.randint(2_000, 300_000)) / 100
        payer = rnd.choice(PAYERS)
        credited, title = "", rnd.choice(TITLES)
        if kind == "account":
            credited = LAYOUT.account_for(rnd.randint(1, names["taxpayers"]))
        elif kind == "decision" and names["decisions"]:
            title = f"{rnd.choice(names['decisions'])} rata 4"
        elif kind == "pesel" and names["pesels"]:
            title = f"podatek PESEL {rnd.choice(names['pesels'])}"
        elif kind == "nip" and names["nips"]:
            nip = rnd.choice(names["nips"])
            title = f"NIP {nip[:3]}-{nip[3:6]}-{nip[6:8]}-{nip[8:]} podatek"
        elif kind == "unmatched":
            title = "darowizna na szkołę"
        elif kind == "debit":
            amount, payer, title = -Decimal(rnd.randint(500, 50_000)) / 100, "BANK", "Opłata za prowadzenie rachunku"
        yield (day, amount, payer, PAYER_ACCOUNT if amount > 0 else "", title, credited)


def write_statement(path: Path, count: int, names: dict[str, Any], seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    written = write_camt053(path, account=GMINA_NRB, entries=entries(count, names, seed),
                            opening=Decimal("100000.00"), statement_id=f"BENCH/{count}")
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    log(f"wrote {path} ({written:,} entries, {size / 1024 / 1024:.1f} MB) in {seconds:.1f} s")
    return {"entries": written, "mb": round(size / 1024 / 1024, 1), "seconds_to_write": round(seconds, 1)}


# -- the database's cache ---------------------------------------------------------------------------------

#: what the import reads: whole tables (a sequential scan reads them through the OS page cache) and,
#: by index-only scans, the indexes it looks things up by
PREWARM_TABLES = ("taxpayer", "decision", "liability", "liability_party", "installment", "posting")
PREWARM_INDEXES = (("posting", "liability_id"), ("posting", "installment_id"), ("posting", "payment_ref"),
                   ("liability_party", "taxpayer_id"), ("installment", "liability_id"), ("decision", "source"))


def prewarm(database: str) -> float:
    """Read what the import reads once, so that the measurement does not depend on what other work
    left in the machine's page cache (PostgreSQL's own 128 MB of shared buffers hold little of it).
    Reads only."""

    from platforma.core.db import make_engine

    started = time.perf_counter()
    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            for table in PREWARM_TABLES:
                conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar()
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            for table, column in PREWARM_INDEXES:
                conn.exec_driver_sql(f'SELECT count("{column}") FROM "{table}" WHERE "{column}" IS NOT NULL').scalar()
            conn.rollback()
    finally:
        engine.dispose()
    return time.perf_counter() - started


def page_cache_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) // 1024
    return 0


# -- the measurements (each in a child process) --------------------------------------------------------

class _Progress:
    """A file read through, reporting every tenth of it on stderr."""

    def __init__(self, inner: BinaryIO, size: int, label: str) -> None:
        self.inner = inner
        self.size = max(size, 1)
        self.read_bytes = 0
        self.next_tenth = 1
        self.label = label
        self.started = time.perf_counter()

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(size)
        self.read_bytes += len(chunk)
        while self.read_bytes * 10 >= self.size * self.next_tenth and self.next_tenth <= 10:
            log(f"    {self.label}: {self.next_tenth * 10} % read, {time.perf_counter() - self.started:.0f} s")
            self.next_tenth += 1
        return chunk


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(mode: str, path: Path, database: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    if mode == "iterparse":
        started, cpu = time.perf_counter(), _own_cpu()
        count = bare_iterparse_count(path)
        return {"mode": mode, "entries": count, "seconds": time.perf_counter() - started, "cpu_seconds": _own_cpu() - cpu}
    if mode == "parse":
        from platforma.payments.statements import Entry, iter_statement

        started, cpu = time.perf_counter(), _own_cpu()
        count = sum(isinstance(item, Entry) for item in iter_statement(path, max_bytes=path.stat().st_size + 1))
        return {"mode": mode, "entries": count, "seconds": time.perf_counter() - started, "cpu_seconds": _own_cpu() - cpu}
    return _import(path, database)


def _import(path: Path, database: str) -> dict[str, Any]:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    import platforma.models  # noqa: F401  (every model, for the foreign keys)
    from platforma.core.db import make_engine
    from platforma.payments import models as payment_models
    from platforma.payments.reconciliation import import_statement
    from platforma.taxes.account import OFFSET_REF_PREFIX
    from platforma.taxes.models import Posting

    engine = make_engine(database)
    with Session(engine) as session:
        # everything below is one transaction, rolled back at the end: the gmina stays as it was
        connection = session.connection()
        backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() \
            if engine.dialect.name == "postgresql" else None
        created_tables = []
        inspector = sa.inspect(connection)
        for table in (payment_models.Payment.__table__, payment_models.PaymentEvent.__table__,
                      payment_models.IdempotencyKey.__table__, payment_models.BankStatement.__table__,
                      payment_models.StatementLine.__table__):
            if not inspector.has_table(table.name):
                table.create(connection)
                created_tables.append(table.name)
        last_posting = session.scalar(sa.select(sa.func.coalesce(sa.func.max(Posting.id), 0)))
        line = payment_models.StatementLine
        last_line = session.scalar(sa.select(sa.func.coalesce(sa.func.max(line.id), 0)))
        start_rss = rss_mb()
        sampler = Sampler(0.25)
        sampler.start()
        db_cpu = _cpu_of(backend) if backend else 0.0
        size = path.stat().st_size
        with open(path, "rb") as raw:
            started, cpu = time.perf_counter(), _own_cpu()
            result = import_statement(session, _Progress(raw, size, "import"), file_name=path.name, layout=LAYOUT,
                                      max_bytes=size + 1)
            session.flush()
            seconds = time.perf_counter() - started
        cpu = _own_cpu() - cpu
        db_cpu = (_cpu_of(backend) - db_cpu) if backend else None
        samples = sampler.stop()
        # the import's own checks, before the rollback
        # a credit's own postings; the ex officio set-offs of overpayments it left (art. 76 OP, payment_ref
        # "zaliczenie:…": a wpłata on an installment and a zwrot of the nadpłata) move money already posted
        new = sa.and_(Posting.id > last_posting, sa.not_(sa.func.coalesce(Posting.payment_ref, "").like(
            OFFSET_REF_PREFIX + "%")))
        grosze = sa.type_coerce(Posting.amount, sa.BigInteger)
        posted = session.execute(sa.select(
            sa.func.count(), sa.func.count(sa.distinct(Posting.payment_ref)),
            sa.func.coalesce(sa.func.sum(sa.case((Posting.kind.in_(("wplata", "nadplata")), grosze), else_=0)), 0),
        ).where(new)).one()
        duplicates = session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(Posting.source, Posting.source_key).where(new).group_by(Posting.source, Posting.source_key)
            .having(sa.func.count() > 1).subquery()))
        lines = session.execute(sa.select(
            sa.func.count(), sa.func.count(sa.distinct(line.sequence)),
            sa.func.coalesce(sa.func.sum(sa.case((line.payment_ref.is_not(None), 1), else_=0)), 0),
        ).where(line.id > last_line)).one()
        session.rollback()
    engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    posted_total = Decimal(posted[2]) / 100  # summed in grosze
    checks = {
        "lines_stored": lines[0], "distinct_sequences": lines[1], "lines_with_payment_ref": lines[2],
        "postings": posted[0], "payments_posted": posted[1], "posted_total": str(posted_total),
        "duplicate_source_keys": duplicates,
    }
    checks["ok"] = (lines[0] == lines[1] == result.entries and lines[2] == posted[1] == result.matched
                    and posted_total == result.posted_total and duplicates == 0)
    return {
        "mode": "import", "entries": result.entries, "seconds": seconds, "cpu_seconds": cpu,
        "postgres_cpu_seconds": db_cpu, "result": result.as_dict(), "checks": checks,
        "tables_created_in_transaction": created_tables,
        "start_rss_mb": round(start_rss, 1), "peak_rss_mb": round(peak, 1), "growth_mb": round(peak - start_rss, 1),
        "rss_by_progress_mb": [
            round(max((mb for t, mb in samples if t <= seconds * k / 10), default=start_rss), 1) for k in range(1, 11)
        ],
    }


def run_child(mode: str, path: Path, database: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.reconciliation", "--child", mode, "--file", str(path), "--database", database]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} of {path} failed (exit {done.returncode})")
    out = json.loads(done.stdout)
    out["entries_per_second"] = round(out["entries"] / out["seconds"], 1)
    out["seconds"] = round(out["seconds"], 2)
    out["cpu_seconds"] = round(out["cpu_seconds"], 2)
    if out.get("postgres_cpu_seconds") is not None:
        out["postgres_cpu_seconds"] = round(out["postgres_cpu_seconds"], 2)
    return out


def measure_size(args: argparse.Namespace, path: Path, breakdown: bool) -> dict[str, Any]:
    baselines = [run_child("iterparse", path, args.database) for _ in range(args.baseline_runs)]
    # the fastest baseline: the strictest ratio
    baseline = max(baselines, key=lambda r: r["entries_per_second"])
    log(f"  iterparse: {baseline['entries_per_second']:,.0f} entries/s "
        "(" + ", ".join(f"{r['seconds']:.2f}" for r in baselines) + " s)")
    parse = run_child("parse", path, args.database) if breakdown and not args.no_breakdown else None
    if parse:
        log(f"  iter_statement alone: {parse['entries_per_second']:,.0f} entries/s ({parse['seconds']:.1f} s), "
            f"{parse['entries_per_second'] / baseline['entries_per_second']:.3f} of iterparse")
    if args.prewarm:
        log(f"  reading the gmina's tables and indexes (page cache: {page_cache_mb():,} MB)")
        seconds = prewarm(args.database)
        log(f"  ... in {seconds:.0f} s (page cache: {page_cache_mb():,} MB)")
    cached = page_cache_mb()
    imported = run_child("import", path, args.database)
    imported["page_cache_mb_at_start"] = cached
    ratio = round(imported["entries_per_second"] / baseline["entries_per_second"], 4)
    log(f"  import: {imported['entries_per_second']:,.0f} entries/s ({imported['seconds']:.1f} s; CPU: import "
        f"{imported['cpu_seconds']:.0f} s, PostgreSQL {imported['postgres_cpu_seconds']} s), ratio {ratio:.3f}; "
        f"peak RSS {imported['peak_rss_mb']:.0f} MB (start {imported['start_rss_mb']:.0f} MB), "
        f"RSS by tenths {imported['rss_by_progress_mb']}; checks {'ok' if imported['checks']['ok'] else 'FAILED'}")
    return {"iterparse_runs": baselines, "iterparse": baseline, "parse": parse, "import": imported,
            "ratio_import_to_iterparse": ratio,
            "ratio_parse_to_iterparse": round(parse["entries_per_second"] / baseline["entries_per_second"], 4)
            if parse else None}


# -- the command -------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reconciliation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="the generated gmina (postgresql://...)")
    parser.add_argument("--entries", type=int, default=200_000, help="entries of the statement measured (default 200,000)")
    parser.add_argument("--small-entries", type=int, default=50_000,
                        help="entries of the smaller statement, for the memory check (default 50,000; 0: skip)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="iterparse runs per file; the fastest counts")
    parser.add_argument("--no-breakdown", action="store_true", help="skip timing iter_statement alone")
    parser.add_argument("--no-prewarm", dest="prewarm", action="store_false",
                        help="do not read the gmina's tables and indexes into the page cache before each import")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workdir", default=None, help="where the statement files go (default: a temporary directory)")
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON ('' for nowhere)")
    parser.add_argument("--child", choices=("iterparse", "parse", "import"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.file, args.database), default=str))
        return 0
    machine = host()
    gmina = gmina_size(args.database)
    log(f"gmina: {gmina['rows']}")
    names = sample(args.database)
    sizes = sorted({n for n in (args.small_entries, args.entries) if n > 0})
    with tempfile.TemporaryDirectory(prefix="bench-statements-", dir=args.workdir) as workdir:
        files = {n: Path(workdir) / f"camt053-{n}.xml" for n in sizes}
        written = {n: write_statement(files[n], n, names, args.seed) for n in sizes}
        log(f"load average before measuring: {load_average()}")
        runs = {}
        for n in sizes:
            log(f"{n:,} entries:")
            runs[n] = {"file": written[n], **measure_size(args, files[n], breakdown=n == args.entries)}
    large, small = runs[args.entries], runs.get(args.small_entries)
    ratio = large["ratio_import_to_iterparse"]
    summary: dict[str, Any] = {
        "entries": args.entries,
        "iterparse_entries_per_second": large["iterparse"]["entries_per_second"],
        "parse_entries_per_second": large["parse"]["entries_per_second"] if large["parse"] else None,
        "import_entries_per_second": large["import"]["entries_per_second"],
        "ratio_import_to_iterparse": ratio, "target_ratio": TARGET_RATIO, "ratio_met": ratio >= TARGET_RATIO,
        "ratio_parse_to_iterparse": large["ratio_parse_to_iterparse"],
        "import_checks_ok": large["import"]["checks"]["ok"] and (small is None or small["import"]["checks"]["ok"]),
        "peak_rss_mb": {str(n): runs[n]["import"]["peak_rss_mb"] for n in sizes},
    }
    if small is not None:
        a, b = small["import"]["peak_rss_mb"], large["import"]["peak_rss_mb"]
        # flat: four times the entries, (nearly) the same peak
        summary["memory_flat"] = b <= 1.10 * a + 10
    write_results(args.results, {
        "benchmark": "reconciliation",
        "host": {**machine, "load_average_at_end": load_average()},
        "gmina": gmina,
        "database_use": "import_statement in one transaction, rolled back at the end (nothing stays in the gmina); "
                        "payments tables created from the models inside it where the gmina predates them",
        "statement": {"format": "camt.053.001.02", "mix": dict(MIX), "first_day": FIRST_DAY.isoformat(), "days": DAYS,
                      "layout": {"sort_code": LAYOUT.sort_code, "fixed": LAYOUT.fixed}, "seed": args.seed},
        "baseline": "bench.statement_file.bare_iterparse_count of the same file, fastest of "
                    f"{args.baseline_runs} runs, in the same run",
        "runs": {str(n): r for n, r in runs.items()},
        "summary": summary,
    })
    log(f"{'PASS' if summary['ratio_met'] else 'FAIL'}: import {summary['import_entries_per_second']:,.0f} entries/s = "
        f"{ratio:.3f} of iterparse's {summary['iterparse_entries_per_second']:,.0f} (target >= {TARGET_RATIO})")
    if "memory_flat" in summary:
        log(f"{'PASS' if summary['memory_flat'] else 'FAIL'}: peak RSS {summary['peak_rss_mb']} MB "
            f"at {sizes} entries (target: flat)")
    log(f"{'PASS' if summary['import_checks_ok'] else 'FAIL'}: every entry stored once, every matched credit posted "
        "once, the postings add up to the matched credits")
    return 0 if summary["import_checks_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
