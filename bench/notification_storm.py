"""A storm of Przelewy24 notifications, each sent twice, as a ratio against a trivial page of the same server.

    python -m bench.notification_storm --database postgresql://postgres@127.0.0.1:5432/bench_storm

Against a gmina loaded by `bench.generate` (PostgreSQL, migrated to the payments tables): starts the
Przelewy24 simulator in this process (`tests.simulators.p24`, the demo credentials) and gunicorn
serving `platforma.wsgi:app` from a temporary instance that offers Przelewy24 at the simulator's
address; creates `--payments` payments of distinct taxpayers (`operations.create_payment`) and
registers each with the simulator (`flows.register_with_gateway`: the simulator now knows them);
takes each one's correctly signed notification (`notification_for`: the payer has paid) and fires
them all, **each twice**, at `/platnosci/powiadomienia/przelewy24` with `wrk` at `--connections`
keep-alive connections. The twins are interleaved a few places apart (some next to each other), so
that both may be in flight at once: both verify with the simulator, one confirms and posts, the other
changes nothing. The first notification of every payment makes the server call the simulator's verify.

The load is a fixed list of requests: the wrk script sends each once and stops when all are answered
(a connection with nothing left to send waits); the time is taken in the script from the first
request to the last answer. The baseline, `/gmina.css` (a trivial Flask page, no database), is
measured the same way: the same number of requests, the same connections and script; it runs
`--baseline-runs` times before the storm and as many after it, and the fastest run counts.

Then it asserts that nothing was lost or posted twice: every payment confirmed and posted, exactly one
`posted` event per payment, its wpłata and nadpłata postings adding up to its amount, no (source,
source_key) twice, every transaction verified at the simulator. Prints and writes notifications
answered per second, the ratio to the trivial page (target >= 0.30), latency and the checks.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.account_page import CpuMeter, gunicorn
from bench.common import RESULTS_DIR, gmina_size, host, load_average, log, write_results
from platforma.config import load_settings
from platforma.instance import render_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = RESULTS_DIR / "notification_storm.json"
#: the requirement (issue 4): notifications answered at >= 30 % of the trivial page's rate
TARGET_RATIO = 0.30
WEBHOOK = "/platnosci/powiadomienia/przelewy24"
TRIVIAL = "/gmina.css"

#: sends a prepared list of requests once each and stops when every one is answered. A connection
#: asking for a request after the list is exhausted gets an empty one: it writes nothing and waits.
WRK_SCRIPT = r'''
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local function now_us()
  local tv = ffi.new("bench_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local requests = {}
local total, sent = 0, 0
local first_us = nil
answered, elapsed_us, statuses = 0, 0, "{}"
local counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local kind, path = args[1], args[2]
  if kind == "get" then
    local request = wrk.format("GET", path)
    for i = 1, tonumber(args[3]) do requests[i] = request end
  else
    for line in io.lines(args[3]) do
      requests[#requests + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, line)
    end
  end
  total = #requests
end

local verified = false
function request()
  -- wrk (4.x) calls request() once before any connection, to check what it returns: not a request sent
  if not verified then
    verified = true
    return requests[1]
  end
  sent = sent + 1
  if sent == 1 then first_us = now_us() end
  if sent > total then return "" end
  return requests[sent]
end

function response(status, headers, body)
  answered = answered + 1
  counts[status] = (counts[status] or 0) + 1
  if answered == total then
    elapsed_us = now_us() - first_us
    local parts = {}
    for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
    statuses = "{" .. table.concat(parts, ", ") .. "}"
    io.write("ALLDONE\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"answered": %d, "elapsed_us": %d, "statuses": %s, "requests": %d, "mean_us": %.1f, ' ..
    '"max_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    t:get("answered"), t:get("elapsed_us"), t:get("statuses"), summary.requests, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    e.connect, e.read, e.write, e.status, e.timeout))
end
'''


# -- the server -------------------------------------------------------------------------------------

def write_instance(directory: Path, simulator_url: str, p24: dict[str, Any]) -> Path:
    """A gmina.toml offering Przelewy24 at the simulator's address (the database comes from the environment)."""
    config = directory / "gmina.toml"
    options = "\n".join(f"{key} = {json.dumps(value)}" for key, value in {**p24, "base_url": simulator_url}.items())
    config.write_text(render_config({"gateways": '["przelewy24"]'}) + f"\n[plugins.options.przelewy24]\n{options}\n",
                      encoding="utf-8")
    config.chmod(0o600)
    return config


def wrk(args: argparse.Namespace, url: str, script_args: list[str], expected: int) -> dict[str, Any]:
    """Run wrk with the list script until every request is answered."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = [args.wrk, "-t", "1", "-c", str(args.connections), "-d", f"{args.max_seconds:g}s",
               "--timeout", "30s", "-s", script.name, url, "--", *script_args]
    if args.wrk_cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(args.wrk_cpu), *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("ALLDONE"):
                process.send_signal(signal.SIGINT)  # wrk's own stop: it prints its summary and exits
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.unlink(script.name)
    found = [line for line in lines if line.startswith("WRKJSON ")]
    if not found:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{''.join(lines)}\n{process.stderr.read()}")
    raw = json.loads(found[-1].removeprefix("WRKJSON "))
    if raw["answered"] != expected or not raw["elapsed_us"]:
        raise RuntimeError(f"wrk stopped after {raw['answered']} of {expected} answers (max {args.max_seconds} s)")
    seconds = raw["elapsed_us"] / 1e6
    return {
        "requests": raw["answered"], "seconds": round(seconds, 3),
        "requests_per_second": round(raw["answered"] / seconds, 1),
        "statuses": raw["statuses"],
        "latency_ms": {key.removesuffix("_us"): round(raw[key] / 1000, 2)
                       for key in ("mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")},
        "errors": raw["errors"],
    }


def measure(args: argparse.Namespace, meter: CpuMeter, name: str, url: str, script_args: list[str],
            expected: int) -> dict[str, Any]:
    before, own_before = meter.snapshot(), resource.getrusage(resource.RUSAGE_SELF)
    result = wrk(args, url, script_args, expected)
    after, own_after = meter.snapshot(), resource.getrusage(resource.RUSAGE_SELF)
    spent = meter.spent(before, after)
    # this process: the simulator answering the verify calls
    spent["simulator"] = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    result["cpu_ms_per_request"] = {part: round(s * 1000 / max(result["requests"], 1), 3) for part, s in spent.items()}
    cpu = result["cpu_ms_per_request"]
    log(f"  {name}: {result['requests']} answered in {result['seconds']:.2f} s = {result['requests_per_second']:,.0f}/s, "
        f"p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms, statuses {result['statuses']}; "
        f"CPU per request: app {cpu['app']} ms, PostgreSQL {cpu['db']} ms, simulator {cpu['simulator']} ms")
    return result


# -- the payments -------------------------------------------------------------------------------------

def create_payments(runtime, count: int, notify_url: str, seed: int, tag: str) -> list[tuple[int, str, Decimal]]:
    """`count` payments of distinct taxpayers spread over the gmina, registered with the gateway:
    (id, reference, amount)."""
    import platforma.models  # noqa: F401  (every model, for the foreign keys)
    from platforma.core.db import transaction
    from platforma.payments import flows, operations
    from platforma.taxes.models import Taxpayer

    rnd = random.Random(seed)
    with transaction(runtime.session_factory) as session:
        top = session.scalar(sa.select(sa.func.max(Taxpayer.id))) or 0
        if top < count:
            raise SystemExit(f"the gmina has {top} taxpayers, fewer than --payments {count}")
        made = []
        for k in range(count):
            amount = Decimal(rnd.randint(2_000, 200_000)) / 100
            payment, _ = operations.create_payment(
                session, taxpayer_id=1 + k * top // count, user_id=None, gateway="przelewy24", amount=amount,
                mode="amount", designation=[], description="Podatki i opłaty (benchmark)",
                idempotency_key=f"storm-{tag}-{k}")
            made.append((payment.id, payment.reference, payment.amount))

    def register(item: tuple[int, str, Decimal]) -> None:
        started = flows.register_with_gateway(runtime, item[0], email="mieszkaniec@example.com",
                                              return_url="http://127.0.0.1/powrot", notify_url=notify_url,
                                              customer_ip="127.0.0.1")
        if not started.redirect_url:
            raise SystemExit(f"registering {item[1]} failed: {started.error}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(register, made))
    return made


def storm_order(bodies: list[bytes], seed: int, spread: int) -> list[bytes]:
    """Each body twice; a twin follows its first copy by 1 to `spread` places (so twins race)."""
    rnd = random.Random(seed)
    keyed = []
    for n, body in enumerate(bodies):
        keyed.append((2.0 * n, body))
        keyed.append((2.0 * n + rnd.uniform(0.5, 2.0 * spread), body))
    return [body for _key, body in sorted(keyed, key=lambda item: item[0])]


def check(runtime, payments: list[tuple[int, str, Decimal]], simulator) -> dict[str, Any]:
    """Zero lost, zero posted twice."""
    from platforma.payments.models import Payment, PaymentEvent
    from platforma.taxes.models import Posting

    ids = [p[0] for p in payments]
    refs = [p[1] for p in payments]
    expected = {p[1]: p[2] for p in payments}
    with runtime.session_factory() as session:
        states = dict(session.execute(sa.select(Payment.reference, Payment.state).where(Payment.id.in_(ids))).all())
        unposted = session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
            Payment.id.in_(ids), Payment.posted_at.is_(None)))
        events = Counter(dict(session.execute(
            sa.select(PaymentEvent.payment_id, sa.func.count()).where(
                PaymentEvent.payment_id.in_(ids), PaymentEvent.kind == "posted").group_by(PaymentEvent.payment_id)).all()))
        sums = {ref: Decimal(total) / 100 for ref, total in session.execute(
            sa.select(Posting.payment_ref, sa.func.sum(sa.type_coerce(Posting.amount, sa.BigInteger)))
            .where(Posting.payment_ref.in_(refs), Posting.kind.in_(("wplata", "nadplata")))
            .group_by(Posting.payment_ref)).all()}
        duplicate_keys = session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(Posting.source, Posting.source_key).where(Posting.payment_ref.in_(refs))
            .group_by(Posting.source, Posting.source_key).having(sa.func.count() > 1).subquery()))
    unverified = [ref for ref in refs if not simulator.transaction(ref)["verified"]]
    out = {
        "payments": len(payments),
        "confirmed": sum(states.get(ref) == "confirmed" for ref in refs),
        "not_posted": unposted,
        "posted_events_not_one": sum(events.get(pid, 0) != 1 for pid in ids),
        "amount_not_posted_exactly": sum(sums.get(ref) != expected[ref] for ref in refs),
        "duplicate_source_keys": duplicate_keys,
        "not_verified_at_gateway": len(unverified),
        "verify_calls": simulator.calls("verify"),
    }
    out["lost"] = len(payments) - out["confirmed"] + out["not_posted"]
    out["posted_twice"] = out["posted_events_not_one"] + out["duplicate_source_keys"] + sum(
        sums.get(ref, Decimal(0)) > expected[ref] for ref in refs)
    out["ok"] = (out["lost"] == 0 and out["posted_twice"] == 0 and out["amount_not_posted_exactly"] == 0
                 and out["not_verified_at_gateway"] == 0)
    return out


# -- the command -------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.notification_storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="the generated gmina (postgresql://...), with the payments tables")
    parser.add_argument("--payments", type=int, default=1000, help="distinct payments, each notified twice (default 1,000)")
    parser.add_argument("--warmup-payments", type=int, default=64,
                        help="payments notified (twice) before measuring, to warm the workers (default 64)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--twin-spread", type=int, default=16,
                        help="a notification's twin follows it by up to this many places (default 16)")
    parser.add_argument("--baseline-runs", type=int, default=5,
                        help="runs of the trivial page before the storm (and after it); the fastest counts")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4, as bench.account_page)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread)")
    parser.add_argument("--no-reuse-port", dest="reuse_port", action="store_false",
                        help="one listening socket shared by the workers (default: each its own, SO_REUSEPORT, "
                             "as deploy/gunicorn.conf.py sets: the kernel spreads the connections)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk binary (apt-get install wrk)")
    parser.add_argument("--wrk-cpu", type=int, default=(os.cpu_count() or 1) - 1,
                        help="pin wrk to this CPU with taskset (default: the last one; -1: do not pin)")
    parser.add_argument("--max-seconds", type=float, default=600, help="give up a wrk run after this long")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON ('' for nowhere)")
    args = parser.parse_args(argv)
    if args.wrk_cpu is not None and args.wrk_cpu < 0:
        args.wrk_cpu = None
    if not shutil.which(args.wrk):
        parser.error(f"{args.wrk} not found: apt-get install -y wrk")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from platforma.core.runtime import Runtime
    from tests.simulators.gateways import DEMO_OPTIONS
    from tests.simulators.p24 import Przelewy24Simulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the simulator's request log
    machine = host()
    gmina = gmina_size(args.database)
    log(f"gmina: {gmina['rows']}")
    p24 = dict(DEMO_OPTIONS["przelewy24"])
    instance = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    simulator = Przelewy24Simulator(**p24).start()
    # Przelewy24 never gives two transactions one order id; a simulator started afresh against a database
    # that keeps earlier runs' payments would (unique gateway + gateway_txn_id): continue past them
    simulator._order_ids = itertools.count(int(time.time()) * 1000)
    runtime = None
    try:
        config = write_instance(instance, simulator.base_url, p24)
        runtime = Runtime.from_settings(load_settings(config, {"PLATFORMA__DATABASE__URL": args.database}))
        tag = secrets.token_hex(4)
        with gunicorn(args, config, args.database) as (base, master):
            meter = CpuMeter(master, args.database)
            started = time.perf_counter()
            made = create_payments(runtime, args.warmup_payments + args.payments, base + WEBHOOK, args.seed, tag)
            warmup, payments = made[:args.warmup_payments], made[args.warmup_payments:]
            log(f"created and registered {len(made)} payments with the simulator in {time.perf_counter() - started:.1f} s")
            bodies = {ref: simulator.notification_for(ref)[1] for _id, ref, _amount in made}
            for ref, body in bodies.items():
                if b"\n" in body:
                    raise SystemExit(f"notification of {ref} spans lines")
            files = {}
            for name, group, seed in (("warmup", warmup, args.seed + 1), ("storm", payments, args.seed)):
                files[name] = instance / f"{name}.txt"
                ordered = storm_order([bodies[ref] for _id, ref, _amount in group], seed, args.twin_spread)
                files[name].write_bytes(b"".join(body + b"\n" for body in ordered))
            count = 2 * args.payments
            log(f"load average before measuring: {load_average()}")
            warmed = None
            if warmup:
                log(f"warm-up: {2 * len(warmup)} notifications and {count} requests of {TRIVIAL}")
                warmed = wrk(args, base + WEBHOOK, ["post", WEBHOOK, str(files["warmup"])], 2 * len(warmup))
                log(f"  warm-up notifications answered {warmed['statuses']}")
                wrk(args, base + TRIVIAL, ["get", TRIVIAL, str(count)], count)
            log(f"baseline: {count} requests of {TRIVIAL} at {args.connections} connections, {args.baseline_runs} runs")
            before = [measure(args, meter, TRIVIAL, base + TRIVIAL, ["get", TRIVIAL, str(count)], count)
                      for _ in range(args.baseline_runs)]
            log(f"storm: {count} notifications ({args.payments} payments, each twice) at {args.connections} connections")
            verify_before = simulator.calls("verify")
            storm = measure(args, meter, "notifications", base + WEBHOOK, ["post", WEBHOOK, str(files["storm"])], count)
            storm["verify_calls"] = simulator.calls("verify") - verify_before
            after = [measure(args, meter, TRIVIAL, base + TRIVIAL, ["get", TRIVIAL, str(count)], count)
                     for _ in range(args.baseline_runs)]
            meter.close()
            server_log = (instance / "gunicorn.log").read_text(errors="replace")
        if server_log.strip():
            log(f"gunicorn's error log (last lines):\n{server_log[-3000:]}")
        checks = check(runtime, payments, simulator)
        checks["warmup"] = check(runtime, warmup, simulator) if warmup else None
        checks["all_answered_200"] = storm["statuses"] == {"200": count}
    finally:
        simulator.stop()
        if runtime is not None:
            runtime.engine.dispose()
        shutil.rmtree(instance, ignore_errors=True)

    # the fastest run of the trivial page, before or after the storm: the strictest ratio
    baseline = max(before + after, key=lambda r: r["requests_per_second"])
    ratio = round(storm["requests_per_second"] / baseline["requests_per_second"], 4)
    ok = checks["ok"] and (checks["warmup"] is None or checks["warmup"]["ok"])
    summary = {
        "notifications": count, "payments": args.payments,
        "notifications_per_second": storm["requests_per_second"],
        "trivial_requests_per_second": baseline["requests_per_second"],
        "trivial_requests_per_second_before": max(r["requests_per_second"] for r in before),
        "trivial_requests_per_second_after": max(r["requests_per_second"] for r in after),
        "ratio_notifications_to_trivial": ratio, "target_ratio": TARGET_RATIO, "ratio_met": ratio >= TARGET_RATIO,
        "latency_ms": {"p50": storm["latency_ms"]["p50"], "p99": storm["latency_ms"]["p99"]},
        "lost": checks["lost"], "posted_twice": checks["posted_twice"], "checks_ok": ok,
        "all_answered_200": checks["all_answered_200"],
        "cpu_ms_per_notification": storm["cpu_ms_per_request"],
    }
    write_results(args.results, {
        "benchmark": "notification_storm",
        "host": {**machine, "load_average_at_end": load_average()},
        "gmina": gmina,
        "server": {"gunicorn": {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads},
                   "app": "platforma.wsgi:app", "webhook": WEBHOOK,
                   "gateway": "Przelewy24 simulator (tests.simulators.p24) in the benchmark process"},
        "load_generator": {"tool": "wrk", "threads": 1, "connections": args.connections, "pinned_to_cpu": args.wrk_cpu,
                           "logic": "a fixed list of requests, each sent once; stops when all are answered",
                           "twin_spread": args.twin_spread, "warmup_payments": args.warmup_payments},
        "baseline": f"{TRIVIAL} (a trivial Flask page, no database): the same number of requests, connections and "
                    f"script; the fastest of {args.baseline_runs} runs before and {args.baseline_runs} after the storm",
        "warmup": warmed, "trivial_before": before, "storm": storm, "trivial_after": after, "checks": checks, "summary": summary,
    })
    log(f"{'PASS' if summary['ratio_met'] else 'FAIL'}: {summary['notifications_per_second']:,.0f} notifications/s = "
        f"{ratio:.3f} of {TRIVIAL}'s {summary['trivial_requests_per_second']:,.0f}/s (target >= {TARGET_RATIO}); "
        f"p50 {summary['latency_ms']['p50']} ms, p99 {summary['latency_ms']['p99']} ms")
    log(f"{'PASS' if ok else 'FAIL'}: {checks['lost']} lost, {checks['posted_twice']} posted twice "
        f"({checks['confirmed']}/{checks['payments']} confirmed, {checks['amount_not_posted_exactly']} amounts off, "
        f"{checks['not_verified_at_gateway']} not verified at the gateway)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
