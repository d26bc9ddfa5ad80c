"""The reminders run: arrears with interest as of a day for a whole generated gmina, its time and memory.

    python -m bench.reminders_run --database postgresql://postgres@127.0.0.1:5432/bench \
        --subset-database postgresql://postgres@127.0.0.1:5432/bench_third

Each measurement runs in a fresh child process (so that its peak RSS is its own), in turn:

* `sql`: the baseline, `platforma.taxes.reminders.liabilities_in_arrears` alone (the aggregate query
  over the whole ledger that finds the liabilities with something owed);
* `lines`: the reminders run, `iter_reminder_lines(session, day)`, every line consumed and dropped
  as it comes (as the CSV export writes them): the run itself, which must run in flat memory;
* `list`: `reminder_lines(session, day)`, the same lines kept in a list as the reminders page shows
  them (what it keeps grows with the number of taxpayers in arrears, by design).

The ratio `lines / sql` shows how much of the run is computation rather than the query. For the
flat-memory check, the same measurements run on `--subset-database` (a smaller gmina generated
with the same options) and RSS is sampled during each run: the run's peak RSS above start-up
should not grow with the number of taxpayers. Targets (issue): under 60 s, memory flat.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from decimal import Decimal
from typing import Any

from bench.common import RESULTS_DIR, gmina_size, host, load_average, log, write_results

RESULTS = RESULTS_DIR / "reminders_run.json"
DAY = dt.date(2026, 11, 22)
TARGET_SECONDS = 60.0
MODES = ("sql", "lines", "list")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1024 / 1024


class Sampler(threading.Thread):
    """RSS every `interval` seconds, to show whether memory grows as the run progresses."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.started = time.perf_counter()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter() - self.started, rss_mb()))
            self._stop_event.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        self._stop_event.set()
        self.join()
        self.samples.append((time.perf_counter() - self.started, rss_mb()))
        return self.samples


def child(mode: str, database: str, day: dt.date, trace: bool) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from platforma.core.db import make_engine
    from platforma.taxes import reminders

    engine = make_engine(database)
    with engine.connect() as conn:  # connect and warm the catalog before the clock starts
        conn.execute(sa.text("SELECT 1"))
    if trace:
        import tracemalloc

        tracemalloc.start()
    start_rss = rss_mb()
    sampler = Sampler(0.25)
    sampler.start()
    started = time.perf_counter()
    result: dict[str, Any] = {}
    with Session(engine) as session:
        if mode == "sql":
            ids = reminders.liabilities_in_arrears(session, day)
            result["liabilities_in_arrears"] = len(ids)
        elif mode == "lines":
            count = liabilities = 0
            zaleglosc = odsetki = Decimal(0)
            for line in reminders.iter_reminder_lines(session, day):
                count += 1
                liabilities += len(line.liabilities)
                zaleglosc += line.zaleglosc
                odsetki += line.odsetki
            result.update({"lines": count, "liabilities_overdue": liabilities, "zaleglosc": str(zaleglosc),
                           "odsetki": str(odsetki)})
        else:
            lines = reminders.reminder_lines(session, day)
            result["lines"] = len(lines)
            result["liabilities_overdue"] = sum(len(line.liabilities) for line in lines)
            result["zaleglosc"] = str(sum(line.zaleglosc for line in lines))
            result["odsetki"] = str(sum(line.odsetki for line in lines))
    seconds = time.perf_counter() - started
    samples = sampler.stop()
    engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.update({
        "mode": mode, "seconds": round(seconds, 2), "start_rss_mb": round(start_rss, 1),
        "peak_rss_mb": round(peak, 1), "growth_mb": round(peak - start_rss, 1),
        # RSS at each tenth of the run: flat, or growing with what has been processed
        "rss_by_progress_mb": [
            round(max((mb for t, mb in samples if t <= seconds * k / 10), default=start_rss), 1) for k in range(1, 11)
        ],
    })
    if trace:
        import tracemalloc

        _current, traced_peak = tracemalloc.get_traced_memory()
        result["tracemalloc_peak_mb"] = round(traced_peak / 1024 / 1024, 1)
    return result


def run_child(mode: str, database: str, day: dt.date, trace: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.reminders_run", "--child", mode, "--database", database,
               "--day", day.isoformat()] + (["--tracemalloc"] if trace else [])
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} on {database} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def measure(database: str, day: dt.date, trace: bool) -> dict[str, Any]:
    gmina = gmina_size(database)
    log(f"{gmina['url']}: {gmina['rows']['taxpayer']:,} taxpayers, {gmina['rows']['liability']:,} liabilities, "
        f"{gmina['rows']['posting']:,} postings")
    runs = {}
    for mode in MODES:
        runs[mode] = run_child(mode, database, day, trace)
        r = runs[mode]
        log(f"  {mode}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
            f"(+{r['growth_mb']:.0f} MB over start-up), RSS by tenths {r['rss_by_progress_mb']}")
    sql = runs["sql"]["seconds"]
    return {
        "gmina": gmina, "runs": runs,
        "ratio_lines_to_sql": round(runs["lines"]["seconds"] / sql, 2) if sql else None,
        "ratio_list_to_sql": round(runs["list"]["seconds"] / sql, 2) if sql else None,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reminders_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="the generated gmina")
    parser.add_argument("--subset-database", help="the same gmina generated at a quarter of the size (flat-memory check)")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DAY, help=f"as of this day (default {DAY})")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON ('' for nowhere)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def summarise(full: dict[str, Any], subset: dict[str, Any] | None) -> dict[str, Any]:
    lines = full["runs"]["lines"]
    summary: dict[str, Any] = {
        "reminders_run_seconds": lines["seconds"],
        "target_seconds": TARGET_SECONDS,
        "seconds_met": lines["seconds"] < TARGET_SECONDS,
        "ratio_lines_to_sql": full["ratio_lines_to_sql"],
        "reminders_run_peak_rss_mb": lines["peak_rss_mb"],
        "reminders_run_growth_mb": lines["growth_mb"],
    }
    for mode in MODES:
        progress = full["runs"][mode]["rss_by_progress_mb"]
        # from the first tenth of the run to its end: what the run accumulates as it goes
        summary[f"{mode}_rss_growth_during_run_mb"] = round(progress[-1] - progress[0], 1)
    if subset:
        summary["taxpayers_ratio"] = round(
            full["gmina"]["rows"]["taxpayer"] / max(subset["gmina"]["rows"]["taxpayer"], 1), 2)
        summary["subset_reminders_run_seconds"] = subset["runs"]["lines"]["seconds"]
        summary["subset_reminders_run_peak_rss_mb"] = subset["runs"]["lines"]["peak_rss_mb"]
        for mode in MODES:
            a, b = full["runs"][mode]["growth_mb"], subset["runs"][mode]["growth_mb"]
            summary[f"{mode}_memory_growth_ratio"] = round(a / b, 2) if b > 0 else None
        # flat: the larger gmina needs (nearly) no more memory above start-up than the smaller one
        summary["memory_flat"] = lines["growth_mb"] <= 1.2 * max(subset["runs"]["lines"]["growth_mb"], 20)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.database, args.day, args.tracemalloc)))
        return 0
    machine = host()
    full = measure(args.database, args.day, args.tracemalloc)
    subset = measure(args.subset_database, args.day, args.tracemalloc) if args.subset_database else None
    write_results(args.results, {
        "benchmark": "reminders_run", "day": args.day.isoformat(),
        "host": {**machine, "load_average_at_end": load_average()},
        "baseline": "liabilities_in_arrears (the aggregate query alone), in the same run",
        "full": full, "subset": subset, "summary": summarise(full, subset),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
