"""Ways of signing a letter: SigningMethod plugins.

Today a resident signs outside the platform and uploads the signed file: an XML document signed with
XAdES (the trusted signature at gov.pl, a qualified-signature application, the e-ID card) or the letter's
PDF signed with PAdES. A signer integrated in the browser (a signing extension, a national signing
service with a redirect) is another plugin of this kind: it sets ``returns_here``, sends the resident
away or runs in the page (its own ``template``), and ``finish`` reads the signed document when the
resident comes back to ``/pisma/<id>/podpis/<plugin id>``. Whatever the method, the signed file then
goes through the same verification and filing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flask import Request
from flask_babel import lazy_gettext as _l

from platforma.core.registry import Plugin, registry
from platforma.core.runtime import Runtime
from platforma.episma.operations import LetterError


@dataclass(frozen=True)
class SignedUpload:
    filename: str
    content: bytes


class SigningMethod(Plugin):
    kind = "SigningMethod"
    #: the resident comes back to the method's address with GET (a redirecting or in-browser signer)
    returns_here: ClassVar[bool] = False
    #: the partial of the draft page that explains the method and holds its controls
    template: ClassVar[str]
    label: ClassVar[str]

    def offered(self, letter) -> bool:
        return True

    def finish(self, request: Request, letter) -> SignedUpload:
        """The signed document the resident brings back; LetterError (Polish) when there is none."""
        raise NotImplementedError


class _Upload(SigningMethod):
    field = "podpisany"

    def finish(self, request: Request, letter) -> SignedUpload:
        upload = request.files.get(self.field)
        if upload is None or not upload.filename:
            raise LetterError(str(_l("Wybierz podpisany plik do wysłania.")))
        return SignedUpload(upload.filename, upload.read())


@registry.register
class XadesUpload(_Upload):
    id = "xades_upload"
    name = "Podpis XAdES: pobranie dokumentu XML i wysłanie podpisanego pliku"
    label = _l("Podpisz plik XML")
    template = "episma/signing/xades_upload.html"


@registry.register
class PadesUpload(_Upload):
    id = "pades_upload"
    name = "Podpis PAdES: pobranie dokumentu PDF i wysłanie podpisanego pliku"
    label = _l("Podpisz plik PDF")
    template = "episma/signing/pades_upload.html"


BUILT_IN = ("xades_upload", "pades_upload")


def available_methods(runtime: Runtime, letter) -> list[SigningMethod]:
    """The built-in upload methods and every SigningMethod plugin enabled in the configuration."""
    ids = list(BUILT_IN) + [p for p in runtime.settings.plugins.enabled
                            if p not in BUILT_IN and registry.get(p).kind == "SigningMethod"]
    methods = [registry.instantiate(p, runtime.settings.plugins.options.get(p, {})) for p in ids]
    return [m for m in methods if m.offered(letter)]


def method(runtime: Runtime, letter, method_id: str) -> SigningMethod | None:
    return next((m for m in available_methods(runtime, letter) if m.id == method_id), None)
