"""A clerk's statement upload is kept and imported by a job, on both databases: the page answers at once
with the result of a small file and with "running" for one that takes longer; a refusal is shown in
Polish with nothing posted; two imports of the same statement at the same moment post it once; an
import cut short (the process ended) is run again by the job sweeper."""
from __future__ import annotations

import io
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from platforma.core import jobs
from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.core.jobs import OutboxJob, run_due
from platforma.payments import reconciliation
from platforma.payments.models import BankStatement, StatementImport, StatementLine
from platforma.payments.queries import virtual_layout
from platforma.taxes.models import Posting
from tests.conftest import csrf_from, login
from tests.integration.test_payments_statements import OTHER_NRB, PAYMENTS, camt053, gmina  # noqa: F401  (the fixture)


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


def _upload(client, data: bytes, name: str = "wyciag.xml"):
    page = client.get("/urzad/platnosci/wyciagi")
    return client.post("/urzad/platnosci/wyciagi", data={"csrf_token": csrf_from(page.data), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _bank_postings(runtime) -> tuple[int, Decimal]:
    """(statement credits posted, their total)"""
    with runtime.session_factory() as session:
        return session.execute(sa.select(sa.func.count(sa.distinct(Posting.payment_ref)),
                                         sa.func.coalesce(sa.func.sum(Posting.amount), 0)).where(
            Posting.source == "bank", Posting.kind.in_(("wplata", "nadplata")))).one()


def test_an_upload_is_imported_by_a_job_and_its_page_tells_the_result(runtime, client, logged_in, create_user, gmina):  # noqa: F811
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    clerk = create_user("clerk")
    logged_in(clerk)

    bad = camt053([("10.00", True, "x", "", "A")], closing="1.00")
    refused = _upload(client, bad, "zly.xml")
    assert refused.status_code == 303
    page = client.get(refused.headers["Location"])
    text = page.data.decode()
    assert page.status_code == 200 and "Wyciąg odrzucony, nic nie zaksięgowano" in text and "się nie bilansuje" in text
    assert client.get(refused.headers["Location"] + "?format=json").json == {"status": "refused", "final": True, "progress": ""}

    other = _upload(client, camt053([("150.00", True, "podatek", layout.account_for(people[0].id), "JAN")],
                                    account=OTHER_NRB), "inny-rachunek.xml")
    text = client.get(other.headers["Location"]).data.decode()
    assert "Wyciąg odrzucony, nic nie zaksięgowano" in text and "nie jest rachunkiem podatków i opłat gminy" in text

    good = camt053([("150.00", True, "podatek", layout.account_for(people[0].id), "JAN KOWALSKI"),
                    ("35.00", True, "za smieci", "", "KTOS NIEZNANY")])
    done = _upload(client, good, "dobry.xml")
    assert done.status_code == 303
    text = client.get(done.headers["Location"]).data.decode()
    assert "Pozycji: 2. Zaksięgowano automatycznie: 1 (150,00\u00a0zł)" in text and "Do przypisania: 1" in text
    assert client.get(done.headers["Location"] + "?format=json").json == {"status": "done", "final": True, "progress": ""}
    # the same file again: imported before, nothing posted twice
    again = client.get(_upload(client, good, "kopia.xml").headers["Location"]).data.decode()
    assert "Pominięto wyciągi wczytane już wcześniej: WYC-2026-0042 42" in again
    assert _bank_postings(runtime) == (1, Decimal("150.00"))

    listing = client.get("/urzad/platnosci/wyciagi").data.decode()
    assert "zly.xml" in listing and "odrzucony" in listing and "dobry.xml" in listing and "wczytany" in listing
    empty = _upload(client, b"", "pusty.xml")
    assert empty.status_code == 400 and "Plik jest pusty" in empty.data.decode()

    with runtime.session_factory() as session:
        uploads = session.execute(sa.select(StatementImport.file_name, StatementImport.status, StatementImport.size_bytes)
                                  .order_by(StatementImport.id)).all()
        actions = [a for a in session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("payments.statement_%"))
                                              .order_by(AuditEntry.id))]
        assert session.scalar(sa.select(sa.func.count()).select_from(BankStatement)) == 1
    assert [u[:2] for u in uploads] == [("zly.xml", "refused"), ("inny-rachunek.xml", "refused"), ("dobry.xml", "done"),
                                        ("kopia.xml", "done")]
    assert [u[2] for u in uploads if u[0] != "inny-rachunek.xml"] == [len(bad), len(good), len(good)]
    assert actions == ["payments.statement_uploaded", "payments.statement_uploaded", "payments.statement_uploaded",
                       "payments.statement_imported",
                       "payments.statement_uploaded", "payments.statement_imported"]


def test_a_resident_cannot_see_an_import(runtime, app, client, logged_in, create_user, gmina):  # noqa: F811
    clerk = create_user("clerk")
    logged_in(clerk)
    location = _upload(client, camt053([("10.00", True, "x", "", "A")])).headers["Location"]
    resident = app.test_client()
    assert login(resident, create_user("resident")).status_code == 302
    assert resident.get(location).status_code == 403
    assert resident.get(location + "?format=json").status_code == 403


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite's write lock would stop the upload too
def test_a_long_import_answers_before_it_ends(runtime, client, logged_in, create_user, gmina, monkeypatch):  # noqa: F811
    """The page does not wait for the import: while another import holds the imports' lock, the clerk is
    answered with "running", and the result follows."""
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    monkeypatch.setattr(jobs, "LONG_JOB_WAIT_SECONDS", 0.3)
    clerk = create_user("clerk")
    logged_in(clerk)
    blocker = runtime.engine.connect()
    blocking = blocker.begin()
    blocker.execute(sa.select(sa.func.pg_advisory_xact_lock(reconciliation._IMPORT_LOCK)))
    try:
        started = time.monotonic()
        answer = _upload(client, camt053([("150.00", True, "podatek", layout.account_for(people[1].id), "ANNA NOWAK")]))
        assert answer.status_code == 303 and time.monotonic() - started < 5
        waiting = client.get(answer.headers["Location"])
        text = waiting.data.decode()
        assert "Trwa wczytywanie wyciągu" in text or "Wyciąg czeka w kolejce" in text
        assert "data-pf-poll" in text and 'role="status"' in text
        assert client.get(answer.headers["Location"] + "?format=json").json["final"] is False
        assert _bank_postings(runtime) == (0, 0)
    finally:
        blocking.rollback()
        blocker.close()
    deadline = time.monotonic() + 30
    while client.get(answer.headers["Location"] + "?format=json").json["status"] != "done":
        assert time.monotonic() < deadline, "the import did not end"
        time.sleep(0.1)
    assert _bank_postings(runtime) == (1, Decimal("150.00"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # progress is written beside the import
def test_a_long_imports_page_shows_how_far_it_has_got(runtime, client, logged_in, create_user, gmina, monkeypatch):  # noqa: F811
    """Stopped in its second batch (a taxpayer's account locked elsewhere), the import's page tells how
    many entries it has stored so far; the count is written outside the import's transaction."""
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    monkeypatch.setattr(jobs, "LONG_JOB_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(reconciliation._ProgressWriter, "EVERY_SECONDS", 0.0)
    first, second = (layout.account_for(people[n].id) for n in (0, 1))
    credits = [("1.00", True, "podatek", first, "A")] * 500 + [("2.00", True, "podatek", second, "B")] * 10
    logged_in(create_user("clerk"))
    with runtime.engine.connect() as blocker:
        blocker.execute(sa.text("SELECT id FROM taxpayer WHERE id = :id FOR UPDATE"), {"id": people[1].id})
        location = _upload(client, camt053(credits)).headers["Location"]
        deadline = time.monotonic() + 30
        while not (state := client.get(location + "?format=json").json)["progress"]:
            assert time.monotonic() < deadline and not state["final"], state
            time.sleep(0.1)
        assert state == {"status": "importing", "final": False, "progress": "Przetworzono dotąd 500 pozycji."}
        assert "Przetworzono dotąd 500 pozycji." in client.get(location).data.decode()
        assert _bank_postings(runtime) == (0, 0)  # nothing is posted until the whole file is
        blocker.rollback()
    while not client.get(location + "?format=json").json["final"]:
        assert time.monotonic() < deadline + 30
        time.sleep(0.1)
    page = client.get(location).data.decode()
    assert "Pozycji: 510. Zaksięgowano automatycznie: 510" in page and "Przetworzono" not in page
    assert _bank_postings(runtime) == (510, Decimal("520.00"))


def test_two_imports_of_one_statement_at_once_post_it_once(runtime, gmina):  # noqa: F811
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    data = camt053([(f"{10 + n}.00", True, "podatek", layout.account_for(people[n % 4].id), "X") for n in range(40)])
    results, errors = [], []
    ready = threading.Barrier(2)

    def run(name):
        try:
            ready.wait()
            with transaction(runtime.session_factory) as session:
                results.append(reconciliation.import_statement(session, data, file_name=name, layout=layout))
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a.xml", "b.xml")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(r.statements for r in results) == [0, 1]
    assert sorted(len(r.already_imported) for r in results) == [0, 1]
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 40
    assert _bank_postings(runtime) == (40, sum(Decimal(10 + n) for n in range(40)))


def test_an_import_cut_short_is_run_again_by_the_sweeper(runtime, gmina, create_user):  # noqa: F811
    """What the database holds after the process died mid-import: the upload marked "importing", its job
    still pending (the import's own transaction never committed). The sweeper finishes it."""
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    clerk = create_user("clerk")
    data = camt053([("77.00", True, "podatek", layout.account_for(people[2].id), "PIOTR")])
    with transaction(runtime.session_factory) as session:
        upload = StatementImport(file_name="przerwany.xml", file_sha256=reconciliation.file_digest(data),
                                 size_bytes=len(data), content=data, uploaded_by_id=clerk.id, status="importing", message="")
        session.add(upload)
        session.flush()
        session.add(OutboxJob(kind="payments.import_statement", payload={"import_id": upload.id}))
        import_id = upload.id
    assert run_due(runtime) == {"done": 1}
    with runtime.session_factory() as session:
        upload = session.get(StatementImport, import_id)
        assert (upload.status, upload.result["matched"], upload.message) == ("done", 1, "")
        assert upload.finished_at is not None and upload.started_at is not None
    assert _bank_postings(runtime) == (1, Decimal("77.00"))
    assert run_due(runtime) == {}  # nothing left to do, nothing posted again
    assert _bank_postings(runtime) == (1, Decimal("77.00"))


def test_what_the_ledger_cannot_hold_is_refused_in_polish(runtime, gmina):  # noqa: F811
    """An account number or statement id longer than a bank statement can carry, an amount with a
    fraction of a grosz or beyond any account's scale: refused with a message, on PostgreSQL as on
    SQLite (one failed on the column, the other stored it or overflowed), and nothing is stored."""
    huge = "99999999999999999.99"
    for data, words in (
        (camt053([("10.00", True, "x", "", "A")], account="PL" + "1" * 40), "nie jest numerem rachunku"),
        (camt053([("10.00", True, "x", "", "A")], statement_id="X" * 90), "dłuższy niż 80 znaków"),
        (camt053([("10.001", True, "x", "", "A")], opening="0.00", closing="10.001"), "saldo zamknięcia: kwota 10.001"),
        (camt053([("10.001", True, "x", "", "A"), ("0.009", True, "x", "", "A")], opening="0.00", closing="10.01"),
         "pozycja 1: kwota 10.001 ma ułamek grosza"),
        (camt053([(huge, True, "x", "", "A")], opening="0.00", closing="0.00"), "przekracza dopuszczalną wielkość"),
        (camt053([("1.00", True, "x", "", "A")], opening="0.005", closing="1.005"), "saldo otwarcia: kwota 0.005"),
    ):
        with pytest.raises(reconciliation.ImportRefused) as refused:
            with transaction(runtime.session_factory) as session:
                reconciliation.import_statement(session, data, file_name="x.xml", layout=virtual_layout(runtime.settings))
        assert words in str(refused.value)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BankStatement)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 0


_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=600)
_AMOUNTS = st.integers(0, 4).flatmap(lambda places: st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("1e19"), places=places, allow_nan=False, allow_infinity=False))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_statement_is_imported_or_refused_never_an_error(runtime, gmina, data):  # noqa: F811
    """Whatever a parsed statement carries (amounts of any scale and size, titles and names of any
    length and script, account numbers of any length), the import posts it or refuses it with a
    message: never a database error."""
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    credited = st.one_of(st.sampled_from([layout.account_for(p.id) for p in people] + [""]),
                         st.text("0123456789", max_size=40))
    entries = data.draw(st.lists(st.tuples(_AMOUNTS.filter(lambda a: a > 0), st.booleans(), _XML_TEXT, credited, _XML_TEXT),
                                 min_size=1, max_size=5))
    total = sum((a if credit else -a) for a, credit, *_ in entries)
    statement = camt053([(f"{a:f}", credit, title, account, who) for a, credit, title, account, who in entries],
                        opening="0.00", closing=f"{max(total, Decimal(0)):f}",
                        statement_id=data.draw(st.text("ABCXYZ0123456789/-", min_size=1, max_size=100)))
    with runtime.session_factory() as session:
        try:
            result = reconciliation.import_statement(session, statement, file_name="f.xml", layout=layout)
        except reconciliation.ImportRefused as refused:
            assert str(refused)
        else:
            assert result.entries == len(entries)
        finally:
            session.rollback()


def test_the_unmatched_queue_pages_and_finds_a_credit(runtime, client, logged_in, create_user, gmina):  # noqa: F811
    """15 March: more unmatched credits than a page holds. The clerk pages through them, oldest first,
    and finds one by a word of its title, by the payer or by its amount."""
    credits = [(f"{20 + n}.00", True, f"oplata nr {n:03d}", "", f"PLATNIK {n:03d}") for n in range(60)]
    credits[37] = ("123.45", True, "smieci za lipiec 100%", "", "ZOFIA ŻÓŁKIEWSKA")
    with transaction(runtime.session_factory) as session:
        reconciliation.import_statement(session, camt053(credits), file_name="x.xml", layout=virtual_layout(runtime.settings))
    logged_in(create_user("clerk"))

    def rows(page):
        return page.count('href="/urzad/platnosci/wyciagi/pozycje/')

    first = client.get("/urzad/platnosci/wyciagi/nieprzypisane").data.decode()
    total = sum(Decimal(a) for a, *_ in credits)
    assert rows(first) == 50 and "Wpłat: 60, razem " in first and "oplata nr 000" in first and 'rel="next"' in first
    assert f"{total:,.2f}".replace(",", "\u00a0").replace(".", ",") in first
    second = client.get("/urzad/platnosci/wyciagi/nieprzypisane?strona=2").data.decode()
    assert rows(second) == 10 and "oplata nr 059" in second and 'rel="prev"' in second and 'rel="next"' not in second
    for query in ("lipiec", "żółkiewska", "123,45", "123.45 zł", "100%"):
        found = client.get("/urzad/platnosci/wyciagi/nieprzypisane", query_string={"szukaj": query}).data.decode()
        assert rows(found) == 1 and "smieci za lipiec" in found and "Wpłat: 1, razem 123,45" in found, query
    nothing = client.get("/urzad/platnosci/wyciagi/nieprzypisane", query_string={"szukaj": "%"}).data.decode()
    assert rows(nothing) == 1  # "%" is a character here, not a wildcard: only the title with "100%"
    none = client.get("/urzad/platnosci/wyciagi/nieprzypisane", query_string={"szukaj": "czynsz"}).data.decode()
    assert rows(none) == 0 and "Żadna nieprzypisana wpłata nie pasuje do „czynsz”" in none
    assert client.get("/urzad/platnosci/wyciagi/nieprzypisane?strona=x").status_code == 200


def test_old_uploaded_files_are_forgotten_and_what_was_imported_stays(runtime, database_url, tmp_path, gmina,  # noqa: F811
                                                                       create_user, monkeypatch):
    """`platforma payments forget-uploads --older-than-days N` drops the content of files imported or refused
    more than N days ago; the statements, their lines and the upload's name, size and hash stay; a file
    still waiting is kept."""
    import datetime as dt
    import json

    from click.testing import CliRunner

    from platforma.cli import cli
    from platforma.instance import render_config

    clerk = create_user("clerk")
    data = camt053([("10.00", True, "x", "", "A")])
    ages = {"done": 400, "refused": 400, "queued": 400}
    with transaction(runtime.session_factory) as session:
        for status, days in [*ages.items(), ("done", 10)]:
            session.add(StatementImport(file_name=f"{status}-{days}.xml", file_sha256="a" * 64, size_bytes=len(data),
                                        content=data, uploaded_by_id=clerk.id, status=status, message="",
                                        uploaded_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)))
    config = tmp_path / "gmina.toml"
    config.write_text(render_config({}).replace('url = "sqlite:///platforma.sqlite3"', f'url = "{database_url}"'),
                      encoding="utf-8")
    monkeypatch.setenv("PLATFORMA_CONFIG", str(config))
    too_soon = CliRunner().invoke(cli, ["payments", "forget-uploads", "--older-than-days", "7"])
    assert too_soon.exit_code == 2
    done = CliRunner().invoke(cli, ["payments", "forget-uploads", "--older-than-days", "365"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"forgotten": 2, "older_than_days": 365}
    with runtime.session_factory() as session:
        kept = dict(session.execute(sa.select(StatementImport.file_name, sa.func.length(StatementImport.content))).all())
        sizes = set(session.scalars(sa.select(StatementImport.size_bytes)))
        audited = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "payments.statement_files_forgotten"))
    assert kept == {"done-400.xml": 0, "refused-400.xml": 0, "queued-400.xml": len(data), "done-10.xml": len(data)}
    assert sizes == {len(data)} and audited == 1
    again = CliRunner().invoke(cli, ["payments", "forget-uploads", "--older-than-days", "365"])
    assert json.loads(again.output)["forgotten"] == 0
