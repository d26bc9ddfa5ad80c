"""Rows kept per process (`core.kept`, ADR 0016): the signed-in session and the account page's access
check and fingerprint are read once and kept until PostgreSQL's notification (migration 0010) says
that what they were read from changed; SQLite keeps nothing. A change by this process shows on its
next request; a change by any other writer as soon as its notification is taken (`kept.sync` waits
for it; the listener takes it on its own); a lost listener keeps nothing until it is back."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import time
import uuid
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from platforma.accounts import sessions
from platforma.accounts.models import TaxpayerAccess, User, UserSession
from platforma.core import kept
from platforma.core.db import COPY_FROM_ROWS, DriverQuery, make_engine, make_session_factory, transaction, utcnow
from platforma.core.runtime import Runtime
from platforma.core.settings import set_value
from platforma.taxes import operations as ops
from platforma.taxes.models import Installment, Liability, LiabilityParty, Posting, Taxpayer
from platforma.app import create_app
from tests.conftest import PASSWORD, login
from tests.integration.test_tax_page_cache import account_of, big_figure, expected_total  # noqa: F401 (fixture)

D = dt.date


@pytest.fixture
def other_writer(runtime):
    """A second engine on the same database: another process, an import, a clerk's SQL."""
    engine = make_engine(str(runtime.engine.url.render_as_string(hide_password=False)))
    yield make_session_factory(engine)
    engine.dispose()


def _page_reads(monkeypatch) -> list:
    """Every read of the signed-in session's row from the database (a spy: the read still happens)."""
    reads = []
    original = DriverQuery.read

    def read(self, bind, **params):
        reads.append(self)
        return original(self, bind, **params)

    monkeypatch.setattr(DriverQuery, "read", read)
    return reads


def _listening(runtime, client, page: str) -> kept.KeptRows | None:
    """The app's kept rows once its listener is up (PostgreSQL), after a first request started it."""
    client.get(page)
    rows = kept.kept_rows(runtime.engine)
    if rows is None:
        return None
    _wait_until_live(rows)
    return rows


def _wait_until_live(rows: kept.KeptRows, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not rows.live:
        assert time.monotonic() < deadline, "the listener did not come up"
        time.sleep(0.01)


def test_the_page_is_served_from_a_kept_row_without_a_query(runtime, logged_in, account_of, monkeypatch):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    page = f"/podatki/{person.id}/"
    rows = _listening(runtime, client, page)
    first = client.get(page)
    reads = _page_reads(monkeypatch)
    for _ in range(3):
        again = client.get(page)
        assert again.status_code == 200 and big_figure(again) == big_figure(first) == expected_total(runtime, person.id)
    if runtime.engine.dialect.name == "sqlite":
        assert rows is None and len(reads) == 3  # nothing kept: every request reads its row
    else:
        assert reads == [] and rows.hits >= 3


@contextlib.contextmanager
def _listener_held_back(rows: kept.KeptRows | None, seconds: float = 0.5):
    """The listening connection's server process stopped for a while (SIGSTOP; the tests run beside
    their PostgreSQL): no notification reaches this process until it goes on."""
    if rows is None:  # SQLite
        yield
        return
    pid = rows.connection.info.backend_pid
    os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(seconds, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        yield
    finally:
        resume.join()
        os.kill(pid, signal.SIGCONT)


def test_a_commit_of_this_process_shows_on_its_next_request(runtime, logged_in, account_of):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    page = f"/podatki/{person.id}/"
    rows = _listening(runtime, client, page)
    before = big_figure(client.get(page))
    with _listener_held_back(rows):  # its notification cannot have arrived: the next request must wait for it
        with transaction(runtime.session_factory) as session:  # no kept.sync: the commit itself asks for one
            ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("300.00"), paid_on=D(2025, 6, 1),
                             payment_ref="K1")
        after = client.get(page)
    assert big_figure(after) == expected_total(runtime, person.id) != before
    with transaction(runtime.session_factory) as session:
        session.execute(sa.update(TaxpayerAccess).values(revoked_at=utcnow()))
    assert client.get(page).status_code == 403


def test_a_change_by_another_writer_shows_once_its_notification_is_taken(runtime, logged_in, account_of, other_writer):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    page = f"/podatki/{person.id}/"
    _listening(runtime, client, page)
    before = big_figure(client.get(page))
    with transaction(other_writer) as session:
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("250.00"), paid_on=D(2025, 6, 1), payment_ref="K2")
    kept.sync(runtime.engine)
    assert big_figure(client.get(page)) == expected_total(runtime, person.id) != before
    with transaction(other_writer) as session:  # a corrected installment: the liability's revision, then its parties
        session.get(Installment, account_of["installments"][3]).due_on = D(2025, 12, 15)
    kept.sync(runtime.engine)
    assert big_figure(client.get(page)) == expected_total(runtime, person.id)
    with transaction(other_writer) as session:  # the user blocked
        session.execute(sa.update(User).where(User.id == account_of["resident"].id).values(is_active=False))
    kept.sync(runtime.engine)
    response = client.get(page)
    assert response.status_code == 302 and "/konto/logowanie" in response.headers["Location"]


def test_a_session_ended_elsewhere_is_not_served(runtime, logged_in, account_of, other_writer):
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    page = f"/podatki/{person.id}/"
    _listening(runtime, client, page)
    assert client.get("/").status_code == 200 and client.get(page).status_code == 200
    with transaction(other_writer) as session:  # e.g. "sign out everywhere" in another worker
        session.execute(sa.update(UserSession).values(ended_at=utcnow(), end_reason="logout"))
    kept.sync(runtime.engine)
    for path in (page, "/konto/"):
        response = client.get(path)
        assert response.status_code == 302 and "/konto/logowanie" in response.headers["Location"]


def test_the_listener_drops_rows_without_waiting_for_a_request(runtime, logged_in, account_of, other_writer):
    if runtime.engine.dialect.name == "sqlite":
        assert kept.kept_rows(runtime.engine) is None  # no notifications: nothing is kept
        return
    person = account_of["person"]
    client = logged_in(account_of["resident"])
    page = f"/podatki/{person.id}/"
    rows = _listening(runtime, client, page)
    client.get(page)
    assert any(f"t{person.id}" in tags for _row, tags, _at in rows.rows.values())
    with transaction(other_writer) as session:
        session.execute(sa.update(Taxpayer).where(Taxpayer.id == person.id).values(city="Leszno"))
    deadline = time.monotonic() + 10
    while any(f"t{person.id}" in tags for _row, tags, _at in list(rows.rows.values())):
        assert time.monotonic() < deadline, "the listener thread did not take the notification"
        time.sleep(0.01)


def test_a_lost_listener_keeps_nothing_until_it_is_back(pg_database, settings_factory, resident_and_taxpayer_on, monkeypatch):
    runtime = Runtime.from_settings(settings_factory(pg_database))
    try:
        app = create_app(runtime=runtime)
        user, taxpayer = resident_and_taxpayer_on(runtime)
        with transaction(runtime.session_factory) as session:
            session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=taxpayer.id, relation="self"))
        client = app.test_client()
        assert login(client, user).status_code == 302
        page = f"/podatki/{taxpayer.id}/"
        rows = _listening(runtime, client, page)
        assert client.get(page).status_code == 200 and rows.rows
        listener_pid = rows.connection.info.backend_pid
        other = make_engine(pg_database)
        with other.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": listener_pid}).scalar()
            # revoked while nobody listens: no notification will ever say so
            conn.execute(sa.update(TaxpayerAccess).values(revoked_at=utcnow()))
        other.dispose()
        assert client.get(page).status_code == 403
        # the row kept before was dropped when the connection was found lost (by the request or the
        # listener thread, whichever came first); only a row read afterwards may be kept
        assert all(row.access_id is None for row, _tags, _at in rows.rows.values())
        _wait_until_live(rows)
        assert rows.connection.info.backend_pid != listener_pid
        hits = rows.hits
        assert [client.get(page).status_code for _ in range(3)] == [403] * 3 and rows.hits >= hits + 2
    finally:
        runtime.engine.dispose()


@pytest.fixture
def resident_and_taxpayer_on():
    """A resident and a taxpayer on a database that is not emptied between tests (unique names)."""
    from platforma.accounts import operations as account_ops

    def make(runtime):
        with transaction(runtime.session_factory) as session:
            user = account_ops.create_user(session, email=f"kept-{uuid.uuid4().hex[:8]}@example.com", full_name="Osoba Trzymana",
                                           password=PASSWORD, role="resident", confirmed=True)
            taxpayer = Taxpayer(kind="natural", first_name="Jan", last_name="Kowalski", source="local",
                                source_key=f"K{uuid.uuid4().hex[:8]}")
            session.add(taxpayer)
            session.flush()
            return user, taxpayer

    return make


def test_a_row_read_while_a_change_was_heard_is_not_kept(pg_database, settings_factory, monkeypatch):
    runtime = Runtime.from_settings(settings_factory(pg_database))
    try:
        rows = kept.kept_rows(runtime.engine)
        rows.lookup(("warm-up",))
        _wait_until_live(rows)
        with transaction(runtime.session_factory) as session:
            taxpayer = Taxpayer(kind="natural", first_name="Anna", last_name="Nowak", source="local", source_key=f"R{uuid.uuid4().hex[:8]}")
            session.add(taxpayer)
        row, stamp = rows.lookup(("row",))
        assert row is None and stamp is not None
        with runtime.engine.begin() as conn:  # a change heard between the read and the store
            conn.execute(sa.update(Taxpayer.__table__).values(city="Kalisz"))
        rows.sync()
        rows.store(("row",), "read before the change", (f"t{taxpayer.id}",), stamp)
        assert rows.lookup(("row",))[0] is None
        _row, stamp = rows.lookup(("row",))
        rows.store(("row",), "read after it", (f"t{taxpayer.id}", "u1"), stamp)
        assert rows.lookup(("row",))[0] == "read after it"
        with runtime.engine.begin() as conn:
            conn.execute(sa.update(Taxpayer.__table__).values(city="Konin"))
        rows.sync()
        assert rows.lookup(("row",))[0] is None and rows.tagged.get("u1") is None  # all its tags forgotten
        _row, stamp = rows.lookup(("row",))
        rows.store(("row",), "again", ("u1",), stamp)
        with transaction(runtime.session_factory) as session:  # the dated settings: everything
            set_value(session, "interest.standard_rate", D(2026, 7, 1), "31.00", author_id=None, note="test")
        assert rows.lookup(("row",))[0] is None
        _row, stamp = rows.lookup(("row",))
        rows.store(("row",), "old", ("u1",), stamp)
        assert rows.lookup(("row",))[0] == "old"
        monkeypatch.setattr(kept, "KEEP_SECONDS", 0.0)  # no row is trusted for longer than KEEP_SECONDS
        assert rows.lookup(("row",))[0] is None
    finally:
        runtime.engine.dispose()
    assert rows.closed and not rows.live


def _heard(listener: psycopg.Connection) -> set[str]:
    listener.execute("SELECT 1")
    return {notify.payload for notify in listener.notifies(timeout=0.2, stop_after=None)}


def test_the_triggers_name_whose_rows_changed(pg_database, settings_factory, resident_and_taxpayer_on):
    """Migration 0010: u<user id>, t<taxpayer id> for each co-owner, * for the settings and large loads."""
    runtime = Runtime.from_settings(settings_factory(pg_database))
    listener = psycopg.connect(pg_database.replace("postgresql+psycopg:", "postgresql:"), autocommit=True)
    try:
        listener.execute(f"LISTEN {kept.CHANNEL}")
        user, owner = resident_and_taxpayer_on(runtime)
        with transaction(runtime.session_factory) as session:
            spouse = Taxpayer(kind="natural", first_name="Ewa", last_name="Kowalska", source="local", source_key=f"S{uuid.uuid4().hex[:8]}")
            session.add(spouse)
            session.flush()
            liability = ops.assess_liability(
                session, tax_kind="nieruchomosci", payer_type="natural", year=2026, amount=Decimal(200),
                parties=[(owner.id, "principal"), (spouse.id, "co_owner")], installments=[(D(2026, 3, 16), Decimal(200))],
                booked_on=D(2026, 2, 1), source="local", source_key=f"L{uuid.uuid4().hex[:8]}", description="Podatek 2026")
            ids = {"owner": owner.id, "spouse": spouse.id, "liability": liability.id,
                   "installment": liability.installments[0].id}
        _heard(listener)
        with transaction(runtime.session_factory) as session:
            session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=owner.id, relation="self"))
        assert _heard(listener) == {f"u{user.id}"}
        with transaction(runtime.session_factory) as session:
            session.get(Installment, ids["installment"]).amount = Decimal(150)
        assert _heard(listener) == {f"t{ids['owner']}", f"t{ids['spouse']}"}
        with transaction(runtime.session_factory) as session:  # the spouse pays for both
            ops.post_payment(session, taxpayer_id=ids["spouse"], amount=Decimal(50), paid_on=D(2026, 3, 1), payment_ref="P")
        assert _heard(listener) == {f"t{ids['owner']}", f"t{ids['spouse']}"}
        with transaction(runtime.session_factory) as session:  # a statement's many lines: its postings go by COPY
            ops.post_payments_batch(session, [ops.PaymentToPost(ids["spouse"], Decimal("0.01"), D(2026, 3, 2), f"C{n}")
                                              for n in range(COPY_FROM_ROWS)])
        assert _heard(listener) == {f"t{ids['owner']}", f"t{ids['spouse']}"}
        with transaction(runtime.session_factory) as session:
            session.execute(sa.update(Liability).where(Liability.id == ids["liability"]).values(tax_kind="rolny"))
        assert _heard(listener) == {f"t{ids['owner']}", f"t{ids['spouse']}"}
        with transaction(runtime.session_factory) as session:
            session.execute(sa.delete(LiabilityParty).where(LiabilityParty.taxpayer_id == ids["spouse"]))
        assert f"t{ids['spouse']}" in _heard(listener)
        with transaction(runtime.session_factory) as session:
            set_value(session, "interest.standard_rate", D(2026, 8, 1), "32.00", author_id=None, note="test")
        assert _heard(listener) == {"*"}
        many = f"M{uuid.uuid4().hex[:8]}-"
        with runtime.engine.begin() as conn:  # one statement posting for more taxpayers than MANY: everything
            conn.execute(sa.insert(Taxpayer.__table__).from_select(
                ["kind", "first_name", "last_name", "name", "street", "postal_code", "city", "source", "source_key",
                 "created_at"],
                sa.select(sa.literal("natural"), sa.literal("A"), sa.literal("B"), sa.literal(""), sa.literal(""),
                          sa.literal(""), sa.literal(""), sa.literal("local"),
                          sa.func.concat(many, sa.func.generate_series(1, 1001)), sa.func.now())))
        _heard(listener)
        with runtime.engine.begin() as conn:
            columns = [c.name for c in Posting.__table__.columns if c.name != "id"]
            # a loose payment of each new taxpayer, as an import would write them
            own = {"taxpayer_id": "t.id", "source_key": "t.source_key", "liability_id": "NULL",
                   "installment_id": "NULL", "corrects_id": "NULL", "kind": "'wplata'"}
            conn.execute(sa.text(
                f"INSERT INTO posting ({', '.join(columns)}) SELECT "
                + ", ".join(own.get(c, f"p.{c}") for c in columns)
                + " FROM taxpayer t CROSS JOIN (SELECT * FROM posting LIMIT 1) p WHERE t.source_key LIKE :many"),
                {"many": f"{many}%"})
        assert _heard(listener) == {"*"}
    finally:
        listener.close()
        runtime.engine.dispose()


def test_a_kept_row_is_read_only_from_the_tables_the_triggers_watch(pg_database):
    for query, _kept_by in sessions._COMPANIONS.values():
        tables = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", query.sql))
        assert tables and tables <= kept.COVERED, tables - kept.COVERED
    engine = make_engine(pg_database)
    try:
        with engine.connect() as conn:
            watched = set(conn.execute(sa.text(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname LIKE 'platforma_kept_%'")).scalars())
    finally:
        engine.dispose()
    assert watched == kept.COVERED


def test_many_threads_read_and_write_without_a_stale_page(runtime, create_user, create_taxpayer, other_writer):
    """Threads serving the page while another writer posts: after the writer's last commit and a sync,
    every thread sees the final figure."""
    resident, person = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        session.add(TaxpayerAccess(user_id=resident.id, taxpayer_id=person.id, relation="self"))
        ops.assess_liability(session, tax_kind="nieruchomosci", payer_type="natural", year=2026, amount=Decimal(900),
                             parties=[(person.id, "principal")], installments=[(D(2026, 3, 16), Decimal(900))],
                             booked_on=D(2026, 2, 1), source="local", source_key=f"L{uuid.uuid4().hex[:8]}", description="Podatek 2026")
    app = create_app(runtime=runtime)
    clients = []
    for _ in range(4):
        client = app.test_client()
        assert login(client, resident).status_code == 302
        clients.append(client)
    page = f"/podatki/{person.id}/"
    stop = threading.Event()
    errors = []

    def serve(client) -> None:
        while not stop.is_set():
            response = client.get(page)
            if response.status_code != 200:
                errors.append(response.status_code)

    threads = [threading.Thread(target=serve, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    try:
        for n in range(5):
            with transaction(other_writer) as session:
                ops.post_payment(session, taxpayer_id=person.id, amount=Decimal(10), paid_on=D(2026, 2, 2),
                                 payment_ref=f"T{n}")
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    kept.sync(runtime.engine)
    final = expected_total(runtime, person.id)
    assert [big_figure(client.get(page)) for client in clients] == [final] * 4


def test_a_database_without_the_triggers_keeps_nothing(pg_database, caplog):
    """Before `platforma db upgrade` has run migration 0010 nothing would say that a row changed."""
    from platforma.core.migrate import upgrade

    admin = make_engine(pg_database, isolation_level="AUTOCOMMIT")
    name = f"platforma_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(str(sa.engine.make_url(pg_database).set(database=name).render_as_string(hide_password=False)))
    try:
        upgrade(engine, "0009")
        rows = kept.kept_rows(engine)
        for _ in range(20):
            assert rows.lookup(("row",)) == (None, None)
            rows.store(("row",), "never kept", ("u1",), 0)
            time.sleep(0.05)
        assert not rows.live and not rows.rows
        assert "migration 0010" in caplog.text
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_gunicorn_workers_hear_a_change_made_by_another_process(runtime, database_url):
    """The real server: two gunicorn workers keep the resident's row; a liability assessed and then the
    access revoked by another process (here: the test's) show in every worker at once."""
    import argparse

    import httpx

    from bench.account_page import bench_instance, gunicorn, sign_in
    from bench.generate import BENCH_PASSWORD
    from platforma.accounts import operations as account_ops

    with transaction(runtime.session_factory) as session:
        user = account_ops.create_user(session, email="gunicorn@example.com", full_name="Osoba Serwerowa",
                                       password=BENCH_PASSWORD, role="resident", confirmed=True)
        taxpayer = Taxpayer(kind="natural", first_name="Jan", last_name="Serwerowy", source="local", source_key="G1")
        session.add(taxpayer)
        session.flush()
        session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=taxpayer.id, relation="self"))
        taxpayer_id = taxpayer.id
    def listeners() -> int:
        # this database's only: the other test process's database has listeners of its own
        with runtime.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                                        "AND datname = current_database()"), {"name": kept.APPLICATION_NAME}).scalar_one()

    listening_before = listeners()  # (an app of an earlier test in this process may still be listening)
    args = argparse.Namespace(port=0, workers=2, worker_class="gthread", threads=2, reuse_port=False)
    with gunicorn(args, bench_instance(), database_url) as (base, _master):
        cookie = {"Cookie": sign_in(base, "gunicorn@example.com")}
        page = f"{base}/podatki/{taxpayer_id}/"

        def every_worker() -> list[httpx.Response]:
            # a new connection each time: the workers take turns accepting them
            return [httpx.get(page, headers=cookie, trust_env=False) for _ in range(24)]

        nothing_yet = "Urząd nie przekazał jeszcze żadnych zobowiązań"
        assert all(r.status_code == 200 and nothing_yet in r.text for r in every_worker())
        assert listeners() - listening_before == 2  # one per worker
        with transaction(runtime.session_factory) as session:
            ops.assess_liability(session, tax_kind="nieruchomosci", payer_type="natural", year=2026,
                                 amount=Decimal(300), parties=[(taxpayer_id, "principal")],
                                 installments=[(D(2026, 3, 16), Decimal(300))], booked_on=D(2026, 2, 1),
                                 source="local", source_key="G1L", description="Podatek 2026 serwer")
        time.sleep(0.2)
        assert all(r.status_code == 200 and nothing_yet not in r.text for r in every_worker())
        with runtime.engine.begin() as conn:
            conn.execute(sa.update(TaxpayerAccess.__table__).values(revoked_at=sa.func.now()))
        time.sleep(0.2)
        assert [r.status_code for r in every_worker()] == [403] * 24
