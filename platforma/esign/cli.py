"""`platforma esign`: verifying signed documents from the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _trust_anchors(trust: Path | None) -> list:
    from platforma.esign.trust import load_trust_anchors

    if trust is not None:
        return load_trust_anchors(trust)
    from platforma.config import load_settings

    settings = load_settings()
    configured = settings.esign.trust_anchors
    if not configured:
        return []
    path = Path(configured)
    return load_trust_anchors(path if path.is_absolute() else settings.instance_path(configured))


def _print(payload: dict) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@click.group(help="Podpisy elektroniczne (XAdES).")
def esign() -> None:
    pass


@esign.command("verify", help="Sprawdź podpis XAdES dokumentu. Kod wyjścia: 0 podpis ważny, 1 nieważny (powody "
                              "w \"errors\"), 2 pliku nie da się odczytać jako podpisanego dokumentu.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plik PEM z certyfikatami zaufanych wystawców (domyślnie esign.trust_anchors z gmina.toml).")
def verify(file: Path, trust: Path | None) -> None:
    from platforma.esign.parsing import SignatureError
    from platforma.esign.trust import TrustAnchorError
    from platforma.esign.verify import verify_document

    try:
        anchors = _trust_anchors(trust)
    except TrustAnchorError as exc:
        click.echo(f"Błąd: {exc}", err=True)
        sys.exit(2)
    try:
        data = file.read_bytes()
    except OSError as exc:
        _refused(f"nie można odczytać pliku {file}: {exc.strerror}")
    try:
        report = verify_document(data, trust_anchors=anchors)
    except SignatureError as exc:
        _refused(str(exc))
    _print(report.as_dict())
    sys.exit(0 if report.valid else 1)


def _refused(message: str) -> None:
    _print({"valid": False, "signer": None, "signed_at": None, "format": None, "errors": [message], "warnings": []})
    click.echo(f"Błąd: {message}", err=True)
    sys.exit(2)
