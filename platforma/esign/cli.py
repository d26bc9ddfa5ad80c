"""`platforma esign`: verifying signed documents and sealing with the office's seal, from the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _trust_anchors(trust: Path | None) -> list:
    """--trust alone when given; otherwise esign.trust_anchors and the office's own seal certificate."""
    from platforma.esign.trust import load_trust_anchors

    if trust is not None:
        return load_trust_anchors(trust)
    from platforma.config import load_settings
    from platforma.esign.seal import configured_trust_anchors

    return configured_trust_anchors(load_settings())


def _print(payload: dict) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@click.group(help="Podpisy elektroniczne (XAdES, PAdES) i pieczęć urzędu.")
def esign() -> None:
    pass


@esign.command("verify", help="Sprawdź podpis XAdES dokumentu XML albo podpisy PAdES dokumentu PDF (rozpoznanego po "
                              "nagłówku %PDF-). Kod wyjścia: 0 podpis ważny, 1 nieważny (powody w \"errors\"), "
                              "2 pliku nie da się odczytać jako podpisanego dokumentu.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plik PEM z certyfikatami zaufanych wystawców (domyślnie esign.trust_anchors z gmina.toml "
                   "oraz certyfikat pieczęci urzędu, esign.seal_certificate).")
def verify(file: Path, trust: Path | None) -> None:
    from platforma.esign.pades import is_pdf, verify_pdf
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
        if is_pdf(data):
            report = verify_pdf(data, trust_anchors=anchors)
        else:
            report = verify_document(data, trust_anchors=anchors)
    except SignatureError as exc:
        _refused(str(exc))
    _print(report.as_dict())
    sys.exit(0 if report.valid else 1)


@esign.command("seal", help="Opatrz plik XML pieczęcią elektroniczną urzędu (XAdES-BES, podpis otaczany) z kluczem "
                            "i certyfikatem z [esign] w gmina.toml. Kod wyjścia: 0 opieczętowano, 2 błąd.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plik wynikowy (domyślnie wyjście standardowe).")
def seal(file: Path, out: Path | None) -> None:
    from platforma.config import load_settings
    from platforma.esign.parsing import SignatureError
    from platforma.esign.seal import SealError, load_seal

    try:
        office_seal = load_seal(load_settings())
    except SealError as exc:
        _fail(str(exc))
    if office_seal is None:
        _fail("nie skonfigurowano pieczęci urzędu: ustaw esign.seal_key i esign.seal_certificate w gmina.toml")
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"nie można odczytać pliku {file}: {exc.strerror}")
    try:
        sealed = office_seal.seal(data)
    except SignatureError as exc:
        _fail(str(exc))
    if out is None:
        click.echo(sealed, nl=False)
        return
    try:
        out.write_bytes(sealed)
    except OSError as exc:
        _fail(f"nie można zapisać pliku {out}: {exc.strerror}")
    click.echo(f"Opieczętowano: {out} (pieczęć: {office_seal.certificate.subject.rfc4514_string()})", err=True)


def _fail(message: str) -> None:
    click.echo(f"Błąd: {message}", err=True)
    sys.exit(2)


def _refused(message: str) -> None:
    _print({"valid": False, "signer": None, "signed_at": None, "format": None, "errors": [message], "warnings": []})
    click.echo(f"Błąd: {message}", err=True)
    sys.exit(2)
