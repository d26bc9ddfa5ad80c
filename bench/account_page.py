"""The resident's account page under load, as a ratio against a trivial page of the same app.

    python -m bench.account_page --database postgresql://postgres@127.0.0.1:5432/bench

Against a gmina loaded by `bench.generate` (PostgreSQL): starts gunicorn on 127.0.0.1 serving
`platforma.wsgi:app` from a temporary instance whose database is the generated one, signs in
`--sessions` generated residents through the login form (CSRF token and all), then drives `wrk`
at `--connections` concurrent keep-alive connections for `--duration` seconds (after a warm-up)
against, in turn:

* `/gmina.css`: the trivial Flask page (no database; the baseline the requirement names),
* `/healthz`: one `SELECT 1` (a second baseline: the cost of a database round trip),
* `/gmina.css` again with the residents' session cookies (the floor of any signed-in page: the
  session read from the database, the signed cookie),
* the account page `/podatki/<taxpayer id>/` of each signed-in resident, requests spread over all
  the sessions in turn (falls back to the overview `/podatki/` when the account page is missing).

Prints and writes requests/s, p50/p90/p95/p99 latency, the ratio account page / trivial page
and whether the targets (ratio >= 0.35, p99 < 100 ms) are met. The server, PostgreSQL and the load
generator share the machine; `wrk` is pinned to one CPU (`--wrk-cpu`), the server is not.
"""
from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import RESULTS_DIR, gmina_size, host, load_average, log, write_results
from bench.generate import BENCH_PASSWORD
from platforma.core.db import make_engine
from platforma.instance import render_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = RESULTS_DIR / "account_page.json"
#: the requirement (issue): the account page at >= 35 % of the trivial page's throughput, p99 < 100 ms
TARGET_RATIO = 0.35
TARGET_P99_MS = 100.0

WRK_SCRIPT = r'''
local targets = {
%(targets)s
}
local n = #targets
local threads = 0
i = 0

function setup(thread)
  -- each wrk thread starts at its own place in the list
  thread:set("i", threads * 7919)
  threads = threads + 1
end

function request()
  i = i + 1
  local t = targets[(i %% n) + 1]
  if t[2] == "" then
    return wrk.format("GET", t[1])
  end
  return wrk.format("GET", t[1], {["Cookie"] = t[2]})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "mean_us": %%.1f, "stdev_us": %%.1f, ' ..
    '"max_us": %%d, "p50_us": %%d, "p90_us": %%d, "p95_us": %%d, "p99_us": %%d, "p999_us": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency:percentile(99.9), e.connect, e.read, e.write, e.status, e.timeout))
end
'''


# -- the server ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class CpuMeter:
    """CPU seconds spent by the gunicorn workers and by the PostgreSQL backends serving the bench
    database: per request, a figure much less sensitive than requests/s to other load on the machine."""

    def __init__(self, master: int, database: str) -> None:
        self.master = master
        self.engine = make_engine(database)
        self.database = self.engine.url.database

    def _backends(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            ), {"db": self.database}).scalars())

    def snapshot(self) -> dict[str, dict[int, float]]:
        workers = [self.master, *_children(self.master)]
        return {
            "app": {pid: _cpu_seconds(pid) for pid in workers},
            "db": {pid: _cpu_seconds(pid) for pid in self._backends()},
        }

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        return {
            part: sum(seconds - before[part].get(pid, 0.0) for pid, seconds in after[part].items())
            for part in ("app", "db")
        }

    def close(self) -> None:
        self.engine.dispose()


def bench_instance() -> Path:
    """A temporary instance directory with a generated gmina.toml (the database comes from the environment)."""
    instance = Path(tempfile.mkdtemp(prefix="bench-instance-"))
    config = instance / "gmina.toml"
    config.write_text(render_config(), encoding="utf-8")
    config.chmod(0o600)
    return config


@contextlib.contextmanager
def gunicorn(args: argparse.Namespace, config: Path, database: str, extra_env: dict[str, str] | None = None
             ) -> Iterator[tuple[str, int]]:
    """gunicorn serving the app from `config` with the benchmarks' worker set-up; yields (base URL, pid)."""
    port = args.port or free_port()
    env = {**os.environ, "PLATFORMA_CONFIG": str(config), "PLATFORMA__DATABASE__URL": database,
           "PYTHONDONTWRITEBYTECODE": "1", **(extra_env or {})}
    errors = config.parent / "gunicorn.log"
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
        "--keep-alive", "5", "--log-level", "warning", "--error-logfile", str(errors), *(
            ["--reuse-port"] if getattr(args, "reuse_port", True) else []), "platforma.wsgi:app",
    ]
    log(f"starting {' '.join(command[1:])}")
    # the app's own error log (an unhandled error's traceback) goes to the same file as gunicorn's
    stderr = open(errors, "ab")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    stderr.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited ({process.returncode}):\n" + errors.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer /healthz within 60 s")
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load generator -------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(jar: http.cookiejar.CookieJar) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())


def _get(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def sign_in(base: str, email: str) -> str:
    """Log in through the real form (as tests/conftest.py `login` does); the Cookie header to send."""
    jar = http.cookiejar.CookieJar()
    opener = _opener(jar)
    status, page = _get(opener, f"{base}/konto/logowanie")
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    if status != 200 or not match:
        raise RuntimeError(f"login page: HTTP {status}, CSRF token {'found' if match else 'missing'}")
    form = urllib.parse.urlencode({"email": email, "password": BENCH_PASSWORD, "csrf_token": match.group(1)}).encode()
    try:
        with opener.open(urllib.request.Request(f"{base}/konto/logowanie", data=form), timeout=60) as response:
            status, landing = response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as error:  # the redirect, not followed (_NoRedirect)
        status, landing = error.code, error.headers.get("Location", "")
    if status != 302:
        raise RuntimeError(f"login of {email}: HTTP {status} instead of a redirect")
    # follow the redirect as a browser does: the first page after the sign-in adds the CSRF token
    # of the logout form to the (cleared) session cookie, and a browser sends the updated cookie
    # from then on (with the cookie of the sign-in itself every request would set a new token)
    status, _page = _get(opener, urllib.parse.urljoin(f"{base}/konto/logowanie", landing))
    if status != 200:
        raise RuntimeError(f"page after the login of {email} ({landing}): HTTP {status}")
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def residents(database: str, count: int) -> list[tuple[str, int]]:
    """(e-mail, taxpayer id) of `count` generated residents spread evenly over all of them."""
    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            users = conn.execute(sa.text(
                "SELECT count(*) FROM user_account WHERE role = 'resident' AND email LIKE 'mieszkaniec%@example.com'"
            )).scalar_one()
            if users == 0:
                raise SystemExit("no generated residents in the database: load it with bench.generate")
            ids = sorted({1 + k * users // count for k in range(min(count, users))})
            rows = conn.execute(sa.text(
                "SELECT u.email, a.taxpayer_id FROM user_account u JOIN taxpayer_access a ON a.user_id = u.id "
                "WHERE u.id = ANY(:ids) AND a.relation = 'self' AND a.revoked_at IS NULL ORDER BY u.id"
            ), {"ids": ids}).all()
    finally:
        engine.dispose()
    return [(email, taxpayer_id) for email, taxpayer_id in rows]


# -- the load generator ----------------------------------------------------------------------------

def wrk(args: argparse.Namespace, base: str, targets: Sequence[tuple[str, str]], seconds: float) -> dict[str, Any]:
    lines = ",\n".join(f"  {{{json.dumps(path)}, {json.dumps(cookie)}}}" for path, cookie in targets)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"targets": lines})
    command = [
        args.wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
        "--timeout", "10s", "-s", script.name, base + targets[0][0],
    ]
    if args.wrk_cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(args.wrk_cpu), *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        os.unlink(script.name)
    found = [line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(found[-1].removeprefix("WRKJSON "))
    seconds_measured = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_measured, 2),
        "requests_per_second": round(raw["requests"] / seconds_measured, 1),
        "latency_ms": {
            key.removesuffix("_us"): round(raw[key] / 1000, 2)
            for key in ("mean_us", "stdev_us", "p50_us", "p90_us", "p95_us", "p99_us", "p999_us", "max_us")
        },
        "kb_per_request": round(raw["bytes"] / max(raw["requests"], 1) / 1024, 1),
        "errors": raw["errors"],
    }


def measure(
    args: argparse.Namespace, base: str, meter: CpuMeter, name: str, targets: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    if args.warmup > 0:
        wrk(args, base, targets, args.warmup)
    before, children_before = meter.snapshot(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(args, base, targets, args.duration)
    after, children_after = meter.snapshot(), resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = meter.spent(before, after)
    spent["load_generator"] = (children_after.ru_utime + children_after.ru_stime
                               - children_before.ru_utime - children_before.ru_stime)
    result["cpu_ms_per_request"] = {
        part: round(seconds * 1000 / max(result["requests"], 1), 3) for part, seconds in spent.items()
    }
    # what the processes measured used of the machine's CPUs during the run (the rest: other work)
    result["cpu_share_of_machine"] = round(sum(spent.values()) / (result["seconds"] * (os.cpu_count() or 1)), 2)
    errors = sum(result["errors"].values())
    cpu = result["cpu_ms_per_request"]
    log(f"  {name}: {result['requests_per_second']:,.0f} requests/s, p50 {result['latency_ms']['p50']} ms, "
        f"p95 {result['latency_ms']['p95']} ms, p99 {result['latency_ms']['p99']} ms; CPU per request: "
        f"app {cpu['app']} ms, PostgreSQL {cpu['db']} ms, wrk {cpu['load_generator']} ms"
        + (f", {errors} errors {result['errors']}" if errors else ""))
    return result


# -- the command -------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.account_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="the generated gmina (postgresql://...)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per page (default 20)")
    parser.add_argument("--warmup", type=float, default=15,
                        help="seconds of warm-up per page, not measured (default 15: each worker renders each "
                             "resident's page once before the measurement, as a server in use has)")
    parser.add_argument("--rounds", type=int, default=1, help="measure the three pages this many times in turn")
    parser.add_argument("--sessions", type=int, default=200, help="residents signed in, each with its own taxpayer")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4 for 2 CPUs)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread)")
    parser.add_argument("--no-reuse-port", dest="reuse_port", action="store_false",
                        help="one listening socket shared by the workers (default: each its own, SO_REUSEPORT, "
                             "as deploy/gunicorn.conf.py sets: the kernel spreads the connections)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary (apt-get install wrk)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--wrk-cpu", type=int, default=(os.cpu_count() or 1) - 1,
                        help="pin wrk to this CPU with taskset (default: the last one; -1: do not pin)")
    parser.add_argument("--page", default="/podatki/{taxpayer_id}/",
                        help="the account page's path, {taxpayer_id} filled in per session")
    parser.add_argument("--page-cache", type=int, default=None,
                        help="renderings the account page keeps per worker (PLATFORMA_ACCOUNT_PAGE_CACHE; "
                             "0: render every request, the page without its cache)")
    parser.add_argument("--kept-rows", type=int, choices=(0, 1), default=None,
                        help="PLATFORMA_KEPT_ROWS for the server (0: every signed-in request reads its row from "
                             "the database, as before ADR 16)")
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON ('' for nowhere)")
    args = parser.parse_args(argv)
    if args.wrk_cpu is not None and args.wrk_cpu < 0:
        args.wrk_cpu = None
    if not shutil.which(args.wrk):
        parser.error(f"{args.wrk} not found: apt-get install -y wrk")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = host()
    gmina = gmina_size(args.database)
    log(f"gmina: {gmina['rows']}")
    chosen = residents(args.database, args.sessions)

    server_env = {} if args.page_cache is None else {"PLATFORMA_ACCOUNT_PAGE_CACHE": str(args.page_cache)}
    if args.kept_rows is not None:
        server_env["PLATFORMA_KEPT_ROWS"] = str(args.kept_rows)
    with gunicorn(args, bench_instance(), args.database, server_env) as (base, master):
        meter = CpuMeter(master, args.database)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            cookies = list(pool.map(lambda item: sign_in(base, item[0]), chosen))
        log(f"signed in {len(cookies)} residents through the login form in {time.perf_counter() - started:.1f} s")

        # the account page, or the overview while the account page does not exist yet
        page = args.page
        status, body = _fetch(base + page.format(taxpayer_id=chosen[0][1]), cookies[0])
        if status == 404 and "{taxpayer_id}" in page:
            log(f"{page} answers 404: measuring the overview /podatki/ instead")
            page = "/podatki/"
        targets = [(page.format(taxpayer_id=taxpayer_id), cookie) for (_email, taxpayer_id), cookie in zip(chosen, cookies)]
        for path, cookie in targets:
            status, body = _fetch(base + path, cookie)
            if status != 200:
                raise SystemExit(f"{path} answers HTTP {status} for a signed-in resident:\n{body[:2000]}")
        log(f"every one of the {len(targets)} account pages answers 200 ({len(body) / 1024:.0f} KB the last)")

        baseline_targets = [("/gmina.css", "")]
        health_targets = [("/healthz", "")]
        # the trivial page again, with the residents' session cookies: what any signed-in page costs
        # before its own work (the session read from the database, the signed cookie)
        signed_in_targets = [("/gmina.css", cookie) for _path, cookie in targets]
        rounds = []
        for number in range(1, args.rounds + 1):
            log(f"round {number}/{args.rounds}: {args.connections} connections, {args.warmup:g} s warm-up, "
                f"{args.duration:g} s measured per page")
            measured = {
                "trivial": measure(args, base, meter, "/gmina.css", baseline_targets),
                "healthz": measure(args, base, meter, "/healthz", health_targets),
                "trivial_signed_in": measure(args, base, meter, "/gmina.css (signed in)", signed_in_targets),
                "account": measure(args, base, meter, page, targets),
            }
            measured["cpu_ratio_trivial_to_account"] = round(
                sum(measured["trivial"]["cpu_ms_per_request"][k] for k in ("app", "db"))
                / sum(measured["account"]["cpu_ms_per_request"][k] for k in ("app", "db")), 3)
            measured["ratio_account_to_trivial"] = round(
                measured["account"]["requests_per_second"] / measured["trivial"]["requests_per_second"], 3)
            measured["ratio_account_to_healthz"] = round(
                measured["account"]["requests_per_second"] / measured["healthz"]["requests_per_second"], 3)
            measured["ratio_account_to_trivial_signed_in"] = round(
                measured["account"]["requests_per_second"] / measured["trivial_signed_in"]["requests_per_second"], 3)
            log(f"  ratio account / trivial: {measured['ratio_account_to_trivial']:.3f}, "
                f"account / healthz: {measured['ratio_account_to_healthz']:.3f}, "
                f"account / trivial signed in: {measured['ratio_account_to_trivial_signed_in']:.3f}")
            rounds.append(measured)

        # the sessions were still signed in at the end (a redirect to the login would count as success in wrk)
        for path, cookie in targets[:: max(1, len(targets) // 10)]:
            status, _ = _fetch(base + path, cookie)
            if status != 200:
                raise SystemExit(f"after the run {path} answers HTTP {status}: the sessions did not last")
        meter.close()

    ratio = statistics.median(r["ratio_account_to_trivial"] for r in rounds)
    p99 = statistics.median(r["account"]["latency_ms"]["p99"] for r in rounds)
    write_results(args.results, {
        "benchmark": "account_page",
        "host": {**machine, "load_average_at_end": load_average()},
        "gmina": gmina,
        "server": {
            "gunicorn": {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads},
            "account_page_cache": "default" if args.page_cache is None else args.page_cache,
            "kept_rows": "default (on)" if args.kept_rows is None else bool(args.kept_rows),
            "app": "platforma.wsgi:app", "page": page, "sessions": len(targets),
        },
        "load_generator": {
            "tool": "wrk", "threads": args.wrk_threads, "connections": args.connections,
            "pinned_to_cpu": args.wrk_cpu, "warmup_seconds": args.warmup, "seconds": args.duration,
            "note": "server, PostgreSQL and wrk share the machine's CPUs",
        },
        "baseline": "/gmina.css (a trivial Flask page, no database); /healthz (SELECT 1) shown alongside",
        "rounds": rounds,
        "summary": {
            "ratio_account_to_trivial": ratio,
            "account_p99_ms": p99,
            "target_ratio": TARGET_RATIO, "target_p99_ms": TARGET_P99_MS,
            "ratio_met": ratio >= TARGET_RATIO, "p99_met": p99 < TARGET_P99_MS,
            # server CPU (app + PostgreSQL) per request: trivial page / account page, the ratio the
            # throughput would reach if nothing else ran on the machine
            "cpu_ratio_trivial_to_account": statistics.median(r["cpu_ratio_trivial_to_account"] for r in rounds),
            "account_cpu_ms_per_request": {
                part: statistics.median(r["account"]["cpu_ms_per_request"][part] for r in rounds)
                for part in ("app", "db", "load_generator")
            },
            "ratio_account_to_trivial_by_round": [r["ratio_account_to_trivial"] for r in rounds],
            "account_p99_ms_by_round": [r["account"]["latency_ms"]["p99"] for r in rounds],
            "ratio_trivial_signed_in_to_trivial": statistics.median(
                round(r["trivial_signed_in"]["requests_per_second"] / r["trivial"]["requests_per_second"], 3)
                for r in rounds),
        },
    })
    return 0


def _request(url: str, cookie: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})


def _fetch(url: str, cookie: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(_request(url, cookie), timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
