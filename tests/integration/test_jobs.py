"""The job outbox: mail leaves only after commit, failures are retried, Huey over Redis carries job ids."""
from __future__ import annotations

import datetime as dt
import os
import socket

import pytest
import sqlalchemy as sa

from platforma.core.db import transaction
from platforma.core.jobs import OutboxJob, dispatch, make_huey, run_due, run_job
from platforma.core.mail import queue_mail
from platforma.core.runtime import Runtime


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_runtime(settings_factory, database_url, smtp_server, runtime):
    rt = Runtime.from_settings(settings_factory(database_url, mail={"backend": "smtp", "host": "127.0.0.1", "port": smtp_server.port}))
    yield rt
    rt.engine.dispose()


def jobs(runtime) -> list[OutboxJob]:
    with runtime.session_factory() as session:
        return list(session.scalars(sa.select(OutboxJob).order_by(OutboxJob.id)))


def test_mail_is_sent_after_commit_through_smtp(smtp_runtime, smtp_server):
    with transaction(smtp_runtime.session_factory) as session:
        queue_mail(session, smtp_runtime, to="anna@example.com", subject="Zażółć gęślą jaźń", text="Treść z polskimi znakami: ąęśćżźńół")
        assert smtp_server.messages() == []  # nothing leaves before the commit
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == "Zażółć gęślą jaźń"
    assert "ąęśćżźńół" in message.get_content()
    [job] = jobs(smtp_runtime)
    assert job.status == "done" and job.attempts == 1


def test_rolled_back_transaction_sends_nothing(smtp_runtime, smtp_server):
    with pytest.raises(RuntimeError):
        with transaction(smtp_runtime.session_factory) as session:
            queue_mail(session, smtp_runtime, to="anna@example.com", subject="x", text="y")
            raise RuntimeError("the request failed")
    assert jobs(smtp_runtime) == []
    assert smtp_server.messages() == []


def test_unreachable_mail_server_is_retried_then_gives_up(settings_factory, database_url, runtime, smtp_server):
    dead = Runtime.from_settings(settings_factory(database_url, mail={"backend": "smtp", "host": "127.0.0.1", "port": free_port()}, jobs={"max_attempts": 2}))
    with transaction(dead.session_factory) as session:
        queue_mail(session, dead, to="anna@example.com", subject="x", text="y")
    [job] = jobs(dead)
    assert job.status == "pending" and job.attempts == 1 and "Connection refused" in job.last_error
    assert job.run_after > dt.datetime.now(dt.timezone.utc)
    assert run_due(dead) == {}  # not due yet

    with transaction(dead.session_factory) as session:
        session.get(OutboxJob, job.id).run_after = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    # the mail server comes back: the sweeper delivers it
    alive = Runtime.from_settings(settings_factory(database_url, mail={"backend": "smtp", "host": "127.0.0.1", "port": smtp_server.port}))
    assert run_due(alive) == {"done": 1}
    assert len(smtp_server.wait_for(1)) == 1

    # a job that keeps failing stops at the attempt limit and is marked failed
    with transaction(dead.session_factory) as session:
        queue_mail(session, dead, to="b@example.com", subject="x", text="y")
    failing = jobs(dead)[-1]
    with transaction(dead.session_factory) as session:
        session.get(OutboxJob, failing.id).run_after = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert run_job(dead, failing.id) == "failed"
    assert run_job(dead, failing.id) == "failed"  # running it again changes nothing
    assert jobs(dead)[-1].attempts == 2
    dead.engine.dispose()
    alive.engine.dispose()


def test_file_backend_writes_eml_files(runtime, tmp_path):
    with transaction(runtime.session_factory) as session:
        queue_mail(session, runtime, to="anna@example.com", subject="Plik", text="z")
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1 and b"anna@example.com" in files[0].read_bytes()


def _redis_url() -> str:
    # one Redis database per xdist worker, so that parallel tests do not see each other's queue
    base = os.environ.get("PLATFORMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    return f"{base}/{15 - worker % 8}"


def test_redis_backend_hands_job_ids_to_huey_workers(settings_factory, database_url, runtime, smtp_server):
    import redis

    url = _redis_url()
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis not reachable at {url}")
    rt = Runtime.from_settings(settings_factory(
        database_url, jobs={"backend": "redis", "redis_url": url}, mail={"backend": "smtp", "host": "127.0.0.1", "port": smtp_server.port},
    ))
    huey = make_huey(rt)
    huey.flush()
    with transaction(rt.session_factory) as session:
        queue_mail(session, rt, to="anna@example.com", subject="Przez Redis", text="z")
    [job] = jobs(rt)
    assert job.status == "pending" and smtp_server.messages() == []  # handed over, not run here
    assert huey.pending_count() == 1
    task = huey.dequeue()  # what a `platforma jobs worker` process does
    huey.execute(task)
    assert smtp_server.wait_for(1)[0]["Subject"] == "Przez Redis"
    assert jobs(rt)[0].status == "done"
    # a duplicate delivery of the same id does nothing more
    dispatch(rt, job.id)
    huey.execute(huey.dequeue())
    assert len(smtp_server.messages()) == 1
    huey.flush()
    rt.engine.dispose()
