"""The `platforma` command: instance set-up, database, demo, users, jobs, plugins, serving."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from platforma.config import ConfigError, load_settings
from platforma.core.db import transaction
from platforma.core.runtime import Runtime


def _runtime() -> Runtime:
    return Runtime.from_settings(load_settings())


@click.group(help="Platforma e-usług gminy. Konfiguracja: plik wskazany w PLATFORMA_CONFIG (domyślnie instance/gmina.toml).")
def cli() -> None:
    pass


@cli.command(help="Utwórz instancję: katalog z gmina.toml, kluczami i bazą SQLite z zastosowanymi migracjami.")
@click.option("--instance", "directory", default="instance", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--demo", is_flag=True, help="Instancja demonstracyjna (pozwala wczytać dane przykładowe).")
def init(directory: Path, demo: bool) -> None:
    from platforma.core.migrate import upgrade
    from platforma.instance import create_instance

    try:
        config = create_instance(directory, demo=demo)
    except FileExistsError as exc:  # gmina.toml, or the seal files of an earlier init
        raise click.ClickException(f"instancja już istnieje: {exc} (nic nie zmieniono)")
    settings = load_settings(config)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    click.echo(f"Utworzono instancję w {directory}/: plik {config}, baza {settings.database_url}")
    click.echo(f"Ustaw PLATFORMA_CONFIG={config} (albo uruchamiaj polecenia z katalogu nadrzędnego).")


@cli.group(help="Baza danych.")
def db() -> None:
    pass


@db.command("upgrade", help="Zastosuj migracje (bezpieczne do wielokrotnego uruchamiania).")
def db_upgrade() -> None:
    from platforma.core.migrate import current_revision, upgrade

    runtime = _runtime()
    before = current_revision(runtime.engine)
    upgrade(runtime.engine)
    after = current_revision(runtime.engine)
    click.echo(f"Schemat bazy: {before or 'pusty'} -> {after}")


@db.command("current", help="Pokaż wersję schematu bazy.")
def db_current() -> None:
    from platforma.core.migrate import current_revision, head_revision

    runtime = _runtime()
    current, head = current_revision(runtime.engine), head_revision()
    click.echo(f"baza: {current or 'pusta'}; najnowsza migracja: {head}")
    if current != head:
        sys.exit(1)


@cli.group(help="Dane demonstracyjne.")
def demo() -> None:
    pass


@demo.command("load", help="Wczytaj gminę demonstracyjną (tylko gdy demo = true); ponowne uruchomienie niczego nie dubluje.")
def demo_load() -> None:
    from platforma.demo.load import load_demo

    runtime = _runtime()
    if not runtime.settings.demo:
        raise click.ClickException("to nie jest instancja demonstracyjna (demo = false w gmina.toml); dane przykładowe nie zostały wczytane")
    from platforma.episma import load_built_in as load_episma

    load_episma()
    with transaction(runtime.session_factory) as session:
        created = load_demo(session, runtime)
    click.echo(f"Dane demonstracyjne: nowi podatnicy {created['taxpayers']}, nowe konta {created['accounts']}, nowe powiązania {created['links']}, nowe zobowiązania {created['liabilities']}, "
               f"pozycje wyciągu bankowego {created['statement_entries']}, e-pisma {created['letters']}")


@demo.command("sign", help="Podpisz pobrane pismo certyfikatem demonstracyjnym Jana Kowalskiego: XML podpisem XAdES, "
                           "PDF podpisem PAdES (tylko gdy demo = true).")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plik wynikowy (domyślnie: nazwa pliku z dopiskiem -podpisany).")
def demo_sign(file: Path, out: Path | None) -> None:
    from platforma.demo.signing import SIGNER_KEY_FILE, sign_demo
    from platforma.esign.parsing import SignatureError

    settings = load_settings()
    directory = Path(settings.instance_dir)
    if not settings.demo or not (directory / SIGNER_KEY_FILE).exists():
        raise click.ClickException("to nie jest instancja demonstracyjna z podpisem demonstracyjnym (platforma init --demo)")
    try:
        signed = sign_demo(file.read_bytes(), directory)
    except (SignatureError, ValueError) as exc:
        raise click.ClickException(f"nie można podpisać pliku {file}: {exc}") from None
    target = out or file.with_name(f"{file.stem}-podpisany{file.suffix}")
    target.write_bytes(signed)
    click.echo(str(target))


@demo.command("logins", help="Wypisz konta demonstracyjne i aktualne kody TOTP.")
def demo_logins() -> None:
    import pyotp

    from platforma.demo.load import DEMO_ACCOUNTS

    runtime = _runtime()
    if not runtime.settings.demo:
        raise click.ClickException("to nie jest instancja demonstracyjna")
    roles = {"resident": "mieszkaniec", "clerk": "urzędnik", "admin": "administrator"}
    click.echo("Konta demonstracyjne (hasło; dla pracowników klucz TOTP do aplikacji uwierzytelniającej):")
    for account in DEMO_ACCOUNTS:
        line = f"  {roles[account.role]:<14} {account.email:<28} hasło: {account.password}"
        if account.totp_secret:
            line += f"   klucz TOTP: {account.totp_secret}   kod teraz: {pyotp.TOTP(account.totp_secret).now()}"
        click.echo(line)
    click.echo("Aktualne kody TOTP: platforma demo logins")


@cli.group(help="Konta użytkowników.")
def users() -> None:
    pass


@users.command("create", help="Utwórz konto (np. pierwszego administratora).")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", type=click.Choice(["resident", "clerk", "admin"]), default="admin", show_default=True)
@click.password_option("--password", help="Hasło (zostaniesz zapytany, jeśli go nie podasz).")
def users_create(email: str, full_name: str, role: str, password: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    from platforma.accounts import operations as ops
    from platforma.accounts.passwords import password_problems
    from platforma.core import audit

    runtime = _runtime()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise click.ClickException("nieprawidłowy adres e-mail")
    problems = password_problems(password, min_length=runtime.settings.security.password_min_length, email=email)
    if problems:
        raise click.ClickException(" ".join(str(p) for p in problems))
    with transaction(runtime.session_factory) as session:
        try:
            user = ops.create_user(session, email=email, full_name=full_name, password=password, role=role, confirmed=True)
        except ops.AccountError as exc:
            raise click.ClickException(str(exc))
        audit.record(session, "user.created", object_type="user", object_id=user.id, details={"email": user.email, "role": role, "via": "cli"})
    click.echo(f"Utworzono konto {email} ({role}). Pracownicy skonfigurują weryfikację dwuetapową przy pierwszym logowaniu.")


@cli.group(help="Zadania w tle (poczta i inne skutki zewnętrzne).")
def jobs() -> None:
    pass


def _load_job_handlers() -> None:
    """Import the modules that register job handlers: mail, e-pisma's receipts and exports, statement imports."""
    import platforma.core.mail  # noqa: F401
    import platforma.payments.reconciliation  # noqa: F401
    from platforma.episma import load_built_in as load_episma

    load_episma()


@jobs.command("run", help="Wykonaj zaległe zadania raz (np. z crona co minutę).")
def jobs_run() -> None:
    from platforma.core.jobs import run_due

    _load_job_handlers()
    click.echo(json.dumps(run_due(_runtime()), ensure_ascii=False))


@jobs.command("status", help="Liczba zadań w każdym stanie.")
def jobs_status() -> None:
    from platforma.core.jobs import OutboxJob

    runtime = _runtime()
    with runtime.session_factory() as session:
        rows = session.execute(sa.select(OutboxJob.status, sa.func.count()).group_by(OutboxJob.status)).all()
        failed = session.scalars(sa.select(OutboxJob).where(OutboxJob.status == "failed").order_by(OutboxJob.id.desc()).limit(10)).all()
    click.echo(json.dumps({status: count for status, count in rows}, ensure_ascii=False))
    for job in failed:
        click.echo(f"  nieudane #{job.id} {job.kind} po {job.attempts} próbach: {job.last_error}")


@jobs.command("worker", help="Proces roboczy Huey (gdy jobs.backend = \"redis\").")
@click.option("--workers", default=2, show_default=True)
def jobs_worker(workers: int) -> None:
    from huey.consumer import Consumer

    from platforma.core.jobs import make_huey

    _load_job_handlers()

    runtime = _runtime()
    if runtime.settings.jobs.backend != "redis":
        raise click.ClickException('jobs.backend nie jest "redis": zadania wykonuje sama aplikacja')
    Consumer(make_huey(runtime), workers=workers, worker_type="thread", periodic=True).run()


@cli.group(help="Wtyczki.")
def plugins() -> None:
    pass


@plugins.command("list", help="Dostępne wtyczki.")
def plugins_list() -> None:
    import platforma.accounts.identity  # noqa: F401
    from platforma.core.registry import registry
    from platforma.episma import load_built_in as load_episma
    from platforma.payments.gateways import load_built_in

    load_built_in()
    load_episma()
    settings = load_settings()
    enabled = {"local", *settings.plugins.enabled, *settings.payments.gateways}
    for plugin in registry.all():
        state = "włączona" if plugin.id in enabled else "wyłączona"
        click.echo(f"{plugin.id:<20} {plugin.kind:<18} {state:<10} {plugin.name}")


@plugins.command("check", help="Sprawdź konfigurację włączonych wtyczek; kod wyjścia 1, gdy któraś nie działa.")
def plugins_check() -> None:
    import platforma.accounts.identity  # noqa: F401
    from platforma.core.registry import registry
    from platforma.episma import load_built_in as load_episma
    from platforma.payments.gateways import load_built_in

    load_built_in()
    load_episma()
    settings = load_settings()
    failed = False
    for plugin_id in dict.fromkeys(["local", *settings.plugins.enabled, *settings.payments.gateways]):
        try:
            result = registry.instantiate(plugin_id, settings.plugins.options.get(plugin_id, {})).check_config()
        except Exception as exc:  # reported, not raised: the administrator needs the message
            ok, message = False, str(exc)
        else:
            ok, message = result.ok, result.message
        failed |= not ok
        click.echo(f"{'OK ' if ok else 'BŁĄD'} {plugin_id}: {message}")
    sys.exit(1 if failed else 0)


@cli.command(help="Uruchom serwer (demo i rozwój; w produkcji gunicorn \"platforma.wsgi:app\").")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from platforma.app import create_app
    import platforma.core.mail  # noqa: F401

    app = create_app()
    click.echo(f"Serwer działa: http://{host}:{port}/  (zatrzymanie: Ctrl-C)")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def _mount_module_commands() -> None:
    """Each module mounts its own command group."""
    from platforma.esign.cli import esign
    from platforma.payments.cli import payments
    from platforma.taxes.cli import taxes

    cli.add_command(taxes)
    cli.add_command(payments)
    cli.add_command(esign)


_mount_module_commands()


def _polish_usage_error(exc: click.UsageError) -> str:
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return f"brak wymaganej opcji {exc.param.get_error_hint(exc.ctx)}"
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        return f"błędna wartość opcji {exc.param.get_error_hint(exc.ctx)}: {exc.message}"
    if isinstance(exc, click.NoSuchOption):
        return f"nieznana opcja {exc.option_name}"
    return exc.format_message()


def main() -> None:
    """Errors are printed in Polish, without a traceback: 1 for a refused operation, 2 for bad input."""
    try:
        code = cli.main(standalone_mode=False)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Przerwano.", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        hint = f" (pomoc: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"Błąd: {_polish_usage_error(exc)}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"Błąd: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code or 0)
if __name__ == "__main__":
    main()
