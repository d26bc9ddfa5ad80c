"""What the benchmarks share: the machine they ran on, and writing their results."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from platforma.core.db import make_engine, normalise_url

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def host() -> dict[str, Any]:
    """The machine: CPUs and memory, and how busy it was (the VM is shared with other work)."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        memory_kb = 0
    return {
        "cpus": os.cpu_count(), "cpu_model": cpu_model, "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(), "load_average_at_start": load_average(),
    }


def gmina_size(url: str) -> dict[str, Any]:
    """How big the generated gmina in the database is (row counts of the tables that matter)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            counts = {
                table: conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()
                for table in ("taxpayer", "user_account", "liability", "installment", "posting")
            }
            version = conn.execute(sa.text("SELECT version()")).scalar_one() if engine.dialect.name == "postgresql" else ""
            size = (
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
                if engine.dialect.name == "postgresql" else None
            )
    finally:
        engine.dispose()
    return {
        "url": sa.engine.make_url(normalise_url(url)).render_as_string(hide_password=True),
        "server": version.split(",")[0], "rows": counts,
        "database_mb": round(size / 1024 / 1024) if size else None,
    }


def write_results(path: str | Path, data: dict[str, Any]) -> None:
    data = {"measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **data}
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    print(text)
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
        log(f"results written to {target}")
