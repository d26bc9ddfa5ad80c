"""The job outbox: outside effects recorded in the transaction, carried out after commit.

A job row is written in the same transaction as the change that needs it; after commit it is run
in-process ("immediate") or handed to Huey workers over Redis ("redis"). A long job (a bank statement of
tens of thousands of entries) runs in-process on a thread of its own: the request that queued it waits
for it a few seconds, then answers, and the job goes on. A failed attempt is retried
with growing delays up to the attempt limit; `platforma jobs run` (cron or the Huey periodic task)
picks up whatever is due, so nothing is lost when a process dies between commit and dispatch.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from platforma.core.db import Base, UTCDateTime, after_commit, transaction, utcnow
from platforma.core.runtime import Runtime

log = logging.getLogger(__name__)

JobHandler = Callable[[Runtime, dict[str, Any]], None]
_HANDLERS: dict[str, JobHandler] = {}
#: the kinds that may run longer than a web request should wait ("immediate": on a thread of their own)
_LONG: set[str] = set()
#: how long a request waits for a long job it queued before it answers ("immediate")
LONG_JOB_WAIT_SECONDS = 10.0


def job_handler(kind: str, *, long: bool = False) -> Callable[[JobHandler], JobHandler]:
    def register(fn: JobHandler) -> JobHandler:
        _HANDLERS[kind] = fn
        if long:
            _LONG.add(kind)
        return fn

    return register


class OutboxJob(Base):
    __tablename__ = "outbox_job"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
        sa.CheckConstraint("attempts >= 0 AND attempts <= max_attempts", name="attempts"),
        sa.Index("ix_outbox_job_due", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: handler name, e.g. "mail.send"
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: pending until done, or failed after max_attempts
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")


def retry_delay(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, ... capped at 6 hours."""
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


def enqueue(session: Session, runtime: Runtime, kind: str, payload: dict[str, Any]) -> OutboxJob:
    if kind not in _HANDLERS:
        raise KeyError(f"no job handler {kind!r}")
    job = OutboxJob(kind=kind, payload=payload, max_attempts=runtime.settings.jobs.max_attempts)
    session.add(job)
    session.flush()
    job_id = job.id
    long = kind in _LONG
    after_commit(session, lambda: dispatch(runtime, job_id, long=long))
    return job


def dispatch(runtime: Runtime, job_id: int, *, long: bool = False) -> None:
    if runtime.settings.jobs.backend == "redis":
        huey_task(runtime)(job_id)
        return
    if long:
        # if the process ends first (a restart), the job is still pending and the sweeper runs it again
        worker = threading.Thread(target=_run_after_commit, args=(runtime, job_id), name=f"platforma-job-{job_id}",
                                  daemon=True)
        worker.start()
        worker.join(LONG_JOB_WAIT_SECONDS)
        return
    _run_after_commit(runtime, job_id)


def _run_after_commit(runtime: Runtime, job_id: int) -> None:
    try:
        run_job(runtime, job_id)
    except Exception:  # the job stays pending and the sweeper retries it
        log.exception("job %s could not be run after commit", job_id)


def run_job(runtime: Runtime, job_id: int) -> str:
    """Run one job if it is due; returns its status afterwards."""
    with transaction(runtime.session_factory) as session:
        query = sa.select(OutboxJob).where(OutboxJob.id == job_id)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.scalars(query).first()
        if job is None or job.status != "pending" or job.run_after > utcnow():
            return job.status if job else "missing"
        job.attempts += 1
        try:
            _HANDLERS[job.kind](runtime, job.payload)
        except Exception as exc:
            job.last_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
            if job.attempts >= job.max_attempts:
                job.status = "failed"
                job.finished_at = utcnow()
                log.error("job %s (%s) failed for good: %s", job.id, job.kind, job.last_error)
            else:
                job.run_after = utcnow() + retry_delay(job.attempts)
            return job.status
        job.status = "done"
        job.finished_at = utcnow()
        job.last_error = ""
        return job.status


def run_due(runtime: Runtime, limit: int = 500) -> dict[str, int]:
    """Run every pending job whose time has come (the sweeper)."""
    with runtime.session_factory() as session:
        ids = session.scalars(
            sa.select(OutboxJob.id)
            .where(OutboxJob.status == "pending", OutboxJob.run_after <= utcnow())
            .order_by(OutboxJob.id)
            .limit(limit)
        ).all()
    counts: dict[str, int] = {}
    for job_id in ids:
        status = run_job(runtime, job_id)
        counts[status] = counts.get(status, 0) + 1
    return counts


# -- Huey over Redis -------------------------------------------------------------------------------

def make_huey(runtime: Runtime):
    """The Huey instance of this runtime: the job id travels through Redis, the job stays in the database."""
    if "huey" in runtime.extras:
        return runtime.extras["huey"]
    from huey import RedisHuey, crontab

    huey = RedisHuey("platforma", url=runtime.settings.jobs.redis_url)

    @huey.task(name="platforma.run_outbox_job")
    def run_outbox_job(job_id: int) -> str:
        return run_job(runtime, job_id)

    @huey.periodic_task(crontab(minute="*"), name="platforma.sweep_outbox")
    def sweep_outbox() -> dict[str, int]:
        return run_due(runtime)

    runtime.extras["huey"] = huey
    runtime.extras["huey_task"] = run_outbox_job
    return huey


def huey_task(runtime: Runtime):
    make_huey(runtime)
    return runtime.extras["huey_task"]
