"""Shared fixtures: settings, a migrated database on SQLite and PostgreSQL, the app, users, mail.

PostgreSQL tests use the server named by PLATFORMA_TEST_DATABASE_URL; when it is unset they are
skipped with the reason printed (CI sets it, and so nothing is skipped there).
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
import uuid
from email.message import Message
from pathlib import Path
from typing import Any, Callable, Iterator

import pyotp
import pytest
import sqlalchemy as sa

import platforma.core.mail  # noqa: F401  (registers the mail job handler)
from platforma.accounts import operations as account_ops
from platforma.accounts.models import User
from platforma.app import create_app
from platforma.config import Settings, settings_from_dict
from platforma.core.db import make_engine, normalise_url, transaction
from platforma.core.migrate import upgrade
from platforma.core.runtime import Runtime
from platforma.models import metadata
from platforma.taxes.models import Taxpayer

#: prints "axe checked N pages" at the end of a run that includes the browser tests
pytest_plugins = ["tests.browser.axe_report"]

ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "PLATFORMA_TEST_DATABASE_URL"
PASSWORD = "Bardzo-Dlugie-Haslo-2026"


def base_settings(instance_dir: Path, database_url: str, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "demo": True,
        "gmina": {
            "name": "Gmina Testowo",
            "office_name": "Urząd Gminy Testowo",
            "teryt": "3021052",
            "nip": "7794242429",
            "regon": "724242429",
            "bank_accounts": [{"name": "Podatki", "nrb": "49909000042001000000001234"}],
        },
        "server": {"secret_key": "k" * 48, "base_url": "http://localhost"},
        "database": {"url": database_url},
        "mail": {"backend": "file", "file_dir": "mail"},
        "instance_dir": str(instance_dir),
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return settings_from_dict(data)


# -- databases -----------------------------------------------------------------------------------

def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test process, migrated once, dropped at the end."""
    admin_url = _pg_admin_url()
    if not admin_url and os.environ.get("PLATFORMA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PLATFORMA_REQUIRE_POSTGRES=1 but {PG_ENV} is not set")
    if not admin_url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    name = f"platforma_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migration_seed_rows() -> list[dict[str, Any]]:
    """The rows migrations 0003 and 0009 seed into dated_setting (the interest rates and amounts of the law)."""
    import importlib.util

    from platforma.core.db import utcnow
    from platforma.core.migrate import MIGRATIONS

    rows = []
    for number in ("0003", "0009"):
        [path] = MIGRATIONS.glob(f"versions/{number}_*.py")
        spec = importlib.util.spec_from_file_location(f"migration_{number}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows += module.seed_rows(utcnow())
    return rows


def _truncate_pg(url: str) -> None:
    """Empty every table between tests, then put back what the migrations seed."""
    from platforma.core.settings import DatedSetting

    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(sa.insert(DatedSetting.__table__), _migration_seed_rows())
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """Every test that uses it runs on both databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    url = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def settings_factory(tmp_path) -> Callable[..., Settings]:
    def make(database_url: str, **sections: dict[str, Any]) -> Settings:
        return base_settings(tmp_path, database_url, **sections)

    return make


@pytest.fixture
def settings(settings_factory, database_url) -> Settings:
    return settings_factory(database_url)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings)
    if rt.engine.dialect.name == "sqlite":
        upgrade(rt.engine)
    yield rt
    rt.engine.dispose()


@pytest.fixture
def app(runtime):
    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_with(settings_factory, database_url):
    """An app whose settings differ from the defaults, on the same database as `runtime`."""
    made = []

    def make(**sections):
        rt = Runtime.from_settings(settings_factory(database_url, **sections))
        if rt.engine.dialect.name == "sqlite":
            upgrade(rt.engine)
        application = create_app(runtime=rt)
        application.config["TESTING"] = True
        made.append(rt)
        return application

    yield make
    for rt in made:
        rt.engine.dispose()


# -- objects ---------------------------------------------------------------------------------------

@pytest.fixture
def create_user(runtime) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: str = "resident", *, email: str | None = None, totp: bool | None = None, confirmed: bool = True, password: str = PASSWORD) -> User:
        email = email or f"{role}{next(counter)}@example.com"
        with transaction(runtime.session_factory) as session:
            user = account_ops.create_user(session, email=email, full_name=f"Osoba {role.title()}", password=password, role=role, confirmed=confirmed)
            if totp if totp is not None else role in ("clerk", "admin"):
                user.totp_secret = pyotp.random_base32(32)
                user.totp_confirmed_at = account_ops.utcnow()
        return user

    return make


@pytest.fixture
def create_taxpayer(runtime) -> Callable[..., Taxpayer]:
    from platforma.demo.people import businesses, people

    counter = iter(range(0, 100_000))

    def make(kind: str = "natural", **fields: Any) -> Taxpayer:
        n = next(counter)
        if kind == "natural":
            p = people(1, seed=99, start=n)[0]
            values = dict(kind="natural", first_name=p.first_name, last_name=p.last_name, pesel=p.pesel, street=p.street, postal_code=p.postal_code, city=p.city)
        else:
            b = businesses(1, seed=99, start=n)[0]
            values = dict(kind="legal", name=b.name, nip=b.nip, regon=b.regon, street=b.street, postal_code=b.postal_code, city=b.city)
        values.update(source="local", source_key=f"T{n}", **fields)
        with transaction(runtime.session_factory) as session:
            taxpayer = Taxpayer(**values)
            session.add(taxpayer)
        return taxpayer

    return make


def csrf_from(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text) or re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, user: User, password: str = PASSWORD, *, totp_secret: str | None = None):
    """Log in through the real pages; returns the last response."""
    page = client.get("/konto/logowanie")
    response = client.post("/konto/logowanie", data={"email": user.email, "password": password, "csrf_token": csrf_from(page.data)})
    if response.status_code == 302 and response.headers["Location"].endswith("/konto/logowanie/kod"):
        page = client.get("/konto/logowanie/kod")
        code = pyotp.TOTP(totp_secret or user.totp_secret).now()
        response = client.post("/konto/logowanie/kod", data={"code": code, "csrf_token": csrf_from(page.data)})
    return response


@pytest.fixture
def logged_in(client):
    def do(user: User, **kwargs):
        response = login(client, user, **kwargs)
        assert response.status_code == 302, response.data[:2000]
        return client

    return do


# -- mail ------------------------------------------------------------------------------------------

class SmtpSimulator:
    def __init__(self, folder: Path, port: int, process: subprocess.Popen):
        self.folder, self.port, self.process = folder, port, process

    def messages(self) -> list[Message]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(self.folder.glob("*.eml"), key=lambda p: p.stat().st_mtime)]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages())}")


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[SmtpSimulator]:
    folder = tmp_path / "smtp"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulators.smtp", "--dir", str(folder)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("READY"), line
    yield SmtpSimulator(folder, int(line.split()[1]), process)
    process.terminate()
    process.wait(timeout=10)


def body_of(message: Message) -> str:
    part = message.get_payload(decode=True) if not message.is_multipart() else message.get_payload(0).get_payload(decode=True)
    return part.decode(message.get_content_charset() or "utf-8")


def link_in(message: Message) -> str:
    match = re.search(r"http://localhost(/\S+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


def pytest_sessionfinish(session, exitstatus):
    """In CI (PLATFORMA_NO_SKIPS=1) a skipped test is a failure: nothing may stand in for a missing part."""
    if os.environ.get("PLATFORMA_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"PLATFORMA_NO_SKIPS=1: {skipped} test(s) were skipped", red=True)
        session.exitstatus = 1
