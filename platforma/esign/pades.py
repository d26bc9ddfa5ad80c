"""Verifying a PAdES-signed PDF (ETSI EN 319 142-1, ISO 32000-2 section 12.8) as the office must.

``verify_pdf`` answers the questions ``verify.verify_document`` answers for XAdES, in the same
``VerificationReport``, so that callers treat both alike:

1. Is every signature intact? pyHanko reads the PDF and each signature (``EmbeddedPdfSignature``); the
   digest over the signature's ByteRange must match its CMS messageDigest, and the CMS signature must
   verify with the signer's certificate key. SHA-1 and MD5 are refused, as for XAdES.
2. What exactly was signed? The revision that the LAST signature covers: ``signed_content`` is
   ``data[:end of its ByteRange]``, never anything appended after it. After that signature only updates
   that pyHanko's difference analysis classifies as long-term-archival (a DSS with validation data, a
   document time-stamp: ``ModificationLevel.LTA_UPDATES``) are accepted; a page added, text replaced, an
   annotation, a form field filled or a file attached after signing makes the document invalid. An
   earlier signature may be followed only by the later signatures themselves (and those updates).
3. Who signed, and when? With several signatures, all must be valid; the report's signer, time and format
   are those of the FIRST signature (the author's; later ones are co-signatures or approvals, named in
   ``warnings``). The time is the signature time-stamp's when its token is intact and was issued by a
   time-stamping authority (extended key usage timeStamping) that chains to a trust anchor (PAdES-B-T);
   otherwise the time the signer declared (the signed /M entry or the signingTime attribute).
4. Is the certificate trusted? Exactly the XAdES policy: ``trust.chain_problems`` at the signing time
   (qualified certificates with only nonRepudiation accepted), ``trust.signer_from_certificate`` for the
   PESEL / NIP.

Nothing is fetched from the network (no OCSP, CRL or AIA): revocation is not checked and the report says
so in ``warnings``. The reading is hardened: a size bound, pyHanko's decoding limits (no compression
bombs), bounds on revisions, objects and signatures, and any failure of the PDF parser becomes a
``SignatureError`` with a Polish reason.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import io
import logging
import re
import warnings as python_warnings
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from platforma.esign import trust
from platforma.esign.parsing import DEFAULT_MAX_BYTES, SignatureError
from platforma.esign.verify import FUTURE_TOLERANCE, VerificationReport

with python_warnings.catch_warnings():
    # pyHanko imports cryptography's DSA module, which warns on import; DSA signatures are refused anyway
    python_warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from asn1crypto import cms, core, tsp
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
    from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel
    from pyhanko.sign.fields import MDPPerm, enumerate_sig_fields
    from pyhanko.sign.general import extract_certificate_info, find_unique_cms_attribute
    from pyhanko.sign.validation.generic_cms import extract_certs_for_validation, validate_sig_integrity
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

# pyHanko logs every refused incremental update with a traceback; the report carries the reason instead
_pyhanko_log = logging.getLogger("pyhanko")
_pyhanko_log.addHandler(logging.NullHandler())
_pyhanko_log.propagate = False

#: a signed letter has a handful of revisions (the document, each signature, DSS and archive time-stamps)
MAX_REVISIONS = 64
#: objects in the final revision (/Size): a 100-page letter with images has a few thousand
MAX_OBJECTS = 200_000
MAX_SIGNATURES = 20
#: objects added or replaced after a signature: a DSS, an archive time-stamp or a further signature change tens;
#: pyHanko's difference analysis costs about 0.1 ms per changed object (16 s for 190,000), so more is refused
MAX_CHANGED_OBJECTS = 5_000
MAX_EMBEDDED_FILES = 100
MAX_PAGES = 10_000
#: name trees and page trees deeper than this are refused (a real one is two or three levels deep)
MAX_TREE_DEPTH = 32

_PADES_SUBFILTERS = ("/ETSI.CAdES.detached", "/PBAD.PAdES")
_CMS_SUBFILTERS = ("/adbe.pkcs7.detached",) + _PADES_SUBFILTERS
#: ETSI TS 119 312: no MD5, no SHA-1; DSA (not ECDSA) is not used by Polish signers
T = TypeVar("T")

_WEAK = re.compile(r"md2|md5|sha1|(?:^|_)dsa$")


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` starts as a PDF file does (the header is at offset 0: ISO 32000-2, 7.5.2)."""
    return bytes(data[:5]) == b"%PDF-"


def outside_event_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, on a short-lived thread of its own if this thread runs an asyncio loop.

    pyHanko's synchronous signing API wraps its coroutines in ``asyncio.run``, which refuses to run
    inside a running loop (an ASGI server's thread, a test process that drives a browser with
    Playwright's sync API)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call(*args, **kwargs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call, *args, **kwargs).result()


# -- reading untrusted PDF bytes --------------------------------------------------------------------

def _decode_limits(max_bytes: int) -> DecodeLimits:
    """pyHanko's limits for untrusted input (no stacked compression bombs), with lower absolute caps.

    Verification decodes only structure (object and cross-reference streams, signature dictionaries) and,
    for ``embedded_files``, the attachments: no stream needs more than a few times the upload bound.
    """
    mib = 1024 * 1024
    return DecodeLimits(per_stream=StreamDecodeLimits(max_output_size=max(4 * max_bytes, 64 * mib)),
                        document_budget=DocumentDecodeBudget(base_allowance=128 * mib, max_ratio=20))


@contextlib.contextmanager
def _unreadable(what: str = "dokument PDF jest uszkodzony lub nieczytelny"):
    """Any failure of the PDF parser on untrusted bytes becomes a SignatureError with a Polish reason."""
    try:
        yield
    except SignatureError:
        raise
    except MemoryError:
        raise SignatureError(f"{what} (zbyt duża struktura)") from None
    except RecursionError:
        raise SignatureError(f"{what} (zbyt głęboko zagnieżdżona struktura)") from None
    except Exception:  # the parser of an outside library on hostile input: any failure means "unreadable"
        raise SignatureError(what) from None


def _open(data: bytes, max_bytes: int) -> PdfFileReader:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise SignatureError(f"dokument PDF jest za duży: {len(data)} bajtów, dopuszczalne {max_bytes}")
    if not data.strip():
        raise SignatureError("plik jest pusty")
    if not is_pdf(data):
        raise SignatureError("plik nie jest dokumentem PDF (brak nagłówka %PDF-)")
    if b"%%EOF" not in data[-1024:]:
        raise SignatureError("dokument PDF jest niekompletny (brak znacznika końca pliku %%EOF); mógł zostać "
                             "ucięty przy przesyłaniu")
    with _unreadable():
        reader = PdfFileReader(io.BytesIO(data), strict=True, decode_limits=_decode_limits(max_bytes))
        encrypted = "/Encrypt" in reader.trailer_view
        if not encrypted:
            reader.root  # the catalog parses, or the document is unreadable
        revisions = reader.xrefs.total_revisions
        size = reader.trailer_view.get("/Size", 0)
    if encrypted:
        raise SignatureError("dokument PDF jest zaszyfrowany (chroniony hasłem lub ograniczeniami); takich "
                             "dokumentów nie da się sprawdzić ani przechowywać, prześlij dokument bez zabezpieczeń")
    if revisions > MAX_REVISIONS:
        raise SignatureError(f"dokument PDF ma {revisions} wersji (aktualizacji przyrostowych); dopuszczalne "
                             f"{MAX_REVISIONS}")
    if not isinstance(size, int) or size > MAX_OBJECTS:
        raise SignatureError(f"dokument PDF ma zbyt wiele obiektów ({size}); dopuszczalne {MAX_OBJECTS}")
    return reader


def _get(dictionary, key: str, default=None):
    """A dictionary entry, resolved, or ``default`` (also when the object is not a dictionary)."""
    if not isinstance(dictionary, generic.DictionaryObject):
        return default
    try:
        return dictionary[key]
    except KeyError:
        return default


def _text(value) -> str | None:
    if isinstance(value, generic.TextStringObject):
        return str(value)
    if isinstance(value, generic.ByteStringObject):
        return value.original_bytes.decode("latin-1")
    return None


# -- one signature ----------------------------------------------------------------------------------

@dataclass
class _Checked:
    """What was found about one /Sig signature."""

    number: int
    field_name: str
    subfilter: str
    embedded: EmbeddedPdfSignature | None = None
    errors: list[str] = field(default_factory=list)
    #: errors about trust in the certificate and the time, as opposed to the signature's integrity: the
    #: signed content is still returned (the clerk may see what was signed)
    trust_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaf: x509.Certificate | None = None
    intermediates: list[x509.Certificate] = field(default_factory=list)
    declared_time: dt.datetime | None = None
    stamped_time: dt.datetime | None = None
    #: an intact signature time-stamp token is present (PAdES-B-T), whether or not its authority is trusted
    time_stamped: bool = False
    pades: bool = False
    end: int | None = None

    @property
    def signed_at(self) -> dt.datetime | None:
        return self.stamped_time or self.declared_time


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def _to_cryptography(certificate: asn1_x509.Certificate) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(certificate.dump())
    except ValueError:
        return None


def _weak_algorithm(signer_info: cms.SignerInfo) -> str | None:
    digest = str(signer_info["digest_algorithm"]["algorithm"].native or "").lower()
    mechanism = str(signer_info["signature_algorithm"]["algorithm"].native or "").lower()
    if _WEAK.search(digest) or _WEAK.search(mechanism):
        return f"{digest} / {mechanism}"
    return None


def _has_attribute(attributes, name: str) -> bool:
    try:
        find_unique_cms_attribute(attributes, name)
        return True
    except Exception:  # absent, repeated or unreadable: not a usable attribute
        return False


def _integrity(check: _Checked) -> None:
    """Digest over the ByteRange, the CMS signature value, the certificates in the CMS."""
    embedded = check.embedded
    signer_info = embedded.signer_info
    weak = _weak_algorithm(signer_info)
    if weak:
        check.errors.append(f"podpis używa algorytmu, którego nie przyjmujemy (SHA-1, MD5 lub DSA: {weak})")
        return
    try:
        extract_certificate_info(embedded.signed_data)
    except Exception:  # no certificate matches the signer identifier
        check.errors.append("podpis nie zawiera certyfikatu podpisującego")
        return
    try:
        certificates = extract_certs_for_validation(embedded.signed_data)
    except Exception:  # the ESS signing-certificate attribute names another certificate
        check.errors.append("podpisane wskazanie certyfikatu (signing-certificate) nie zgadza się z certyfikatem "
                            "podpisującego zawartym w podpisie")
        return
    check.leaf = _to_cryptography(certificates.signer_cert)
    check.intermediates = [c for c in map(_to_cryptography, certificates.other_certs) if c is not None]
    if check.leaf is None:
        check.errors.append("certyfikatu podpisującego nie da się odczytać")
        return
    try:
        digest = embedded.compute_digest()
        intact, valid = validate_sig_integrity(signer_info, certificates.signer_cert, "data", digest)
    except Exception:  # wrong content type, algorithm protection mismatch, unknown algorithm, broken CMS
        check.errors.append("podpis ma nieprawidłową budowę (dane podpisu CMS są niezgodne ze standardem)")
        return
    if not intact:
        check.errors.append("zmieniono treść podpisanego dokumentu (skrót podpisanego zakresu nie zgadza się z "
                            "podpisem)")
    if not valid:
        check.errors.append("wartość podpisu nie zgadza się z podpisanymi danymi: podpis został zmieniony albo "
                            "złożono go innym kluczem niż klucz z certyfikatu")


def _coverage(check: _Checked) -> None:
    coverage = check.embedded.coverage
    if coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        check.errors.append("podpis nie obejmuje całej podpisanej wersji dokumentu (nietypowy zakres ByteRange); "
                            "część treści mogła zostać dopisana lub zmieniona bez naruszenia podpisu")
        return
    _, _, start, length = (int(n) for n in check.embedded.byte_range)
    check.end = start + length


def _timestamp_token(check: _Checked, anchors: list[x509.Certificate]) -> None:
    """PAdES-B-T: the signature time-stamp token (RFC 3161) over this signature's value."""
    signer_info = check.embedded.signer_info
    unsigned = signer_info["unsigned_attrs"]
    if unsigned is core.VOID:
        return
    tokens = [a for a in unsigned if a["type"].native == "signature_time_stamp_token"]
    if not tokens:
        return
    try:
        token = tokens[0]["values"][0]["content"]
        value = signer_info["signature"].native
        gen_time, tsa, intermediates, problem = _check_token(token, lambda algorithm: _digest(algorithm, value))
    except Exception:  # an unreadable token is reported, not fatal: the declared time still stands
        gen_time, tsa, intermediates, problem = None, None, [], "nie da się go odczytać"
    if problem:
        check.warnings.append(f"znacznik czasu podpisu jest nieprawidłowy ({problem}); pominięto go, czas podpisu "
                              "przyjęto z deklaracji podpisującego")
        return
    check.time_stamped = True
    distrust = _time_stamping_problems(tsa) or trust.chain_problems(tsa, intermediates, anchors, gen_time)
    if distrust:
        check.warnings.append(f"znacznika czasu podpisu nie uznano ({distrust[0]}); czas podpisu przyjęto z "
                              "deklaracji podpisującego")
        return
    check.stamped_time = gen_time
    if check.declared_time is not None and check.declared_time > gen_time + FUTURE_TOLERANCE:
        check.warnings.append("czas podpisu zadeklarowany przez podpisującego jest późniejszy niż czas ze znacznika "
                              "czasu; przyjęto czas ze znacznika")


def _time_stamping_problems(tsa: x509.Certificate) -> list[str]:
    """RFC 3161, 2.3: a time-stamping authority's certificate has the sole extended key usage timeStamping.

    Without this check any signer could vouch for their own signing time with their own certificate.
    """
    try:
        usages = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = []
    if x509.oid.ExtendedKeyUsageOID.TIME_STAMPING not in usages:
        return ["certyfikat nie jest certyfikatem urzędu znacznika czasu (brak rozszerzenia timeStamping)"]
    return []


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()  # asn1crypto's names are hashlib's (sha256, sha3_256)


def _check_token(token: cms.SignedData, imprint_of) -> tuple:
    """(time, TSA certificate, intermediates, problem) of a RFC 3161 token: its integrity, not yet its trust.

    ``imprint_of(algorithm)`` is the digest the token must carry (of the signature value, or of the
    document's byte range for a document time-stamp).
    """
    content = token["encap_content_info"]
    info = content["content"].parsed if content["content_type"].native == "tst_info" else None
    if not isinstance(info, tsp.TSTInfo):
        return None, None, [], "nie zawiera informacji o czasie (TSTInfo)"
    imprint = info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    signer_info = token["signer_infos"][0]
    if _WEAK.search(str(algorithm)) or _weak_algorithm(signer_info):
        return None, None, [], "używa skrótu SHA-1 lub MD5"
    if imprint_of(algorithm) != imprint["hashed_message"].native:
        return None, None, [], "dotyczy innych danych"
    certificates = extract_certs_for_validation(token)
    digest = _digest(signer_info["digest_algorithm"]["algorithm"].native, bytes(content["content"]))
    intact, valid = validate_sig_integrity(signer_info, certificates.signer_cert, "tst_info", digest)
    tsa = _to_cryptography(certificates.signer_cert)
    if not (intact and valid) or tsa is None:
        return None, None, [], "podpis urzędu znacznika czasu nie zgadza się"
    intermediates = [c for c in map(_to_cryptography, certificates.other_certs) if c is not None]
    return _utc(info["gen_time"].native), tsa, intermediates, None


# -- changes after signing --------------------------------------------------------------------------

def _pages(handler, limit: int = MAX_PAGES) -> list[generic.DictionaryObject]:
    """The leaves of the page tree, in order, without following a loop."""
    found: list[generic.DictionaryObject] = []
    seen: set[int] = set()
    stack = [(handler.root["/Pages"], 0)]
    while stack and len(found) <= limit:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH or id(node) in seen:
            continue
        seen.add(id(node))
        kids = _get(node, "/Kids")
        if isinstance(kids, generic.ArrayObject):
            stack.extend((kid.get_object() if isinstance(kid, generic.IndirectObject) else kid, depth + 1)
                         for kid in reversed(kids))
        elif isinstance(node, generic.DictionaryObject):
            found.append(node)
    return found[:limit]


def _page_facts(handler) -> tuple[int, list[bytes], list[int]]:
    """Page count, each page's content bytes (as encoded) and number of annotations."""
    pages = _pages(handler)
    contents, annotations = [], []
    for page in pages:
        value = _get(page, "/Contents")
        streams = value if isinstance(value, generic.ArrayObject) else [value]
        digest = hashlib.sha256()
        for stream in streams:
            stream = stream.get_object() if isinstance(stream, generic.IndirectObject) else stream
            if isinstance(stream, generic.StreamObject):
                digest.update(stream.encoded_data)
        contents.append(digest.digest())
        annots = _get(page, "/Annots")
        annots = annots if isinstance(annots, generic.ArrayObject) else []
        annotations.append(sum(1 for a in annots if not _is_signature_widget(a)))
    return len(pages), contents, annotations


def _is_signature_widget(annotation) -> bool:
    """The widget of a signature field (a later signature adds one): not an annotation a person made."""
    annotation = annotation.get_object() if isinstance(annotation, generic.IndirectObject) else annotation
    return str(_get(annotation, "/FT", "")) == "/Sig" or str(_get(_get(annotation, "/Parent"), "/FT", "")) == "/Sig"


def _describe_changes(reader: PdfFileReader, revision: int, fields: set[str]) -> list[str]:
    """In Polish, what an update after ``revision`` changed (best effort: the verdict is pyHanko's)."""
    parts: list[str] = []
    try:
        before: HistoricalResolver = reader.get_historical_resolver(revision)
        old_count, old_contents, old_annots = _page_facts(before)
        new_count, new_contents, new_annots = _page_facts(reader)
        if old_count != new_count:
            parts.append("dodano lub usunięto strony")
        if any(a != b for a, b in zip(old_contents, new_contents)):
            parts.append("zmieniono treść stron")
        if any(a != b for a, b in zip(old_annots, new_annots)):
            parts.append("dodano lub zmieniono adnotacje (komentarze, pola, znaczniki)")
        if _attachment_names(before) != _attachment_names(reader):
            parts.append("dodano lub zmieniono załączniki")
    except Exception:  # the verdict stands without a description
        pass
    if fields:
        parts.append("wypełniono pola formularza: " + ", ".join(sorted(fields)))
    return parts


def _changed_after(reader: PdfFileReader, revision: int) -> int:
    xrefs = reader.xrefs
    return sum(len(xrefs.explicit_refs_in_revision(later)) + len(xrefs.refs_freed_in_revision(later))
               for later in range(revision + 1, xrefs.total_revisions))


def _modifications(check: _Checked, reader: PdfFileReader, later_fields: set[str]) -> None:
    """Only later signatures and archival updates may follow a signature (ISO 32000-2, 12.8.2.2; DocMDP)."""
    embedded = check.embedded
    result = embedded.diff_result
    if result is None:
        return  # not analysed: too many changes, already reported
    level = result.modification_level if isinstance(result, DiffResult) else ModificationLevel.OTHER
    filled = set(result.changed_form_fields) - later_fields if isinstance(result, DiffResult) else set()
    allowed = level <= ModificationLevel.LTA_UPDATES or (level == ModificationLevel.FORM_FILLING and not filled)
    if not allowed:
        parts = _describe_changes(reader, embedded.signed_revision, filled) or ["zmiana innego rodzaju"]
        check.errors.append(f"dokument zmieniono po złożeniu podpisu ({'; '.join(parts)}); po podpisaniu można "
                            "dodać tylko kolejne podpisy, znaczniki czasu i dane do weryfikacji")
        return
    try:
        permission = embedded.docmdp_level
    except Exception:  # an unreadable DocMDP transform: nothing to hold the document to
        permission = None
    if permission is not None and level.value > permission.value:
        what = "żadnych zmian" if permission is MDPPerm.NO_CHANGES else "takich zmian"
        check.errors.append(f"podpis certyfikujący dokument nie dopuszcza {what}, a po nim dodano kolejny podpis "
                            "lub wypełniono formularz")


# -- the document -----------------------------------------------------------------------------------

def _signature_fields(reader: PdfFileReader) -> list[tuple[str, generic.DictionaryObject, generic.DictionaryObject]]:
    with _unreadable("dokument PDF ma uszkodzony formularz (pola podpisów są nieczytelne)"):
        found = []
        for name, value, field_ref in enumerate_sig_fields(reader, filled_status=True):
            found.append((name, value.get_object(), field_ref))
            if len(found) > MAX_SIGNATURES:
                raise SignatureError(f"dokument PDF zawiera więcej niż {MAX_SIGNATURES} podpisów; takich dokumentów "
                                     "nie przyjmujemy")
        return found


def _load(reader: PdfFileReader, name: str, value, field_ref) -> _Checked:
    check = _Checked(number=0, field_name=name, subfilter=str(_get(value, "/SubFilter", "")))
    try:
        check.embedded = EmbeddedPdfSignature(reader, field_ref, name)
    except Exception:  # unreadable /Contents, /ByteRange or CMS
        check.errors.append("danych podpisu (CMS w polu /Contents) nie da się odczytać")
    return check


def _format(check: _Checked, document_level: str | None) -> str:
    """The first signature's level; B-LT and B-LTA are the document's (its DSS and archive time-stamps)."""
    if not check.pades:
        return "PDF (PKCS#7)"
    if document_level:
        return document_level
    return "PAdES-B-T" if check.time_stamped else "PAdES-B-B"


def _document_level(reader: PdfFileReader, timestamps: list[EmbeddedPdfSignature], last_revision: int) -> str | None:
    """PAdES-B-LT: validation data (DSS with revocation data); PAdES-B-LTA: and an archive time-stamp after it."""
    try:
        dss = _get(reader.root, "/DSS")
        revocation = any(isinstance(_get(dss, key), generic.ArrayObject) and len(_get(dss, key)) > 0
                         for key in ("/OCSPs", "/CRLs"))
    except Exception:  # an unreadable DSS: no long-term level
        return None
    if not revocation:
        return None
    if any(ts.signed_revision > last_revision for ts in timestamps):
        return "PAdES-B-LTA"
    return "PAdES-B-LT"


def _document_timestamps(reader: PdfFileReader, fields, warnings: list[str]) -> list[EmbeddedPdfSignature]:
    """Intact /DocTimeStamp signatures (their authority's trust is not judged: they only archive)."""
    intact = []
    for name, value, field_ref in fields:
        if str(_get(value, "/Type", "/Sig")) != "/DocTimeStamp":
            continue
        try:
            embedded = EmbeddedPdfSignature(reader, field_ref, name)
            problem = _check_token(embedded.signed_data, embedded.compute_digest)[3]
        except Exception:  # unreadable: reported below
            problem = "nie da się go odczytać"
        if problem:
            warnings.append(f"znacznik czasu dokumentu (pole „{name}”) jest nieprawidłowy ({problem}); pominięto go")
        else:
            intact.append(embedded)
    if intact:
        warnings.append("znaczniki czasu dokumentu (archiwalne) są nienaruszone, lecz zaufania do ich wystawcy nie "
                        "sprawdzono")
    return intact


def verify_pdf(data: bytes, *, trust_anchors: list[x509.Certificate], now: dt.datetime | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> VerificationReport:
    """Verify every signature of a signed PDF; raise SignatureError when it cannot be read as one at all.

    ``now`` is the moment of verification (default: now). The report describes the FIRST signature (the
    author's); every other signature must be valid too, and its problems are reported with its number.
    A PDF without any signature (or with only document time-stamps) raises SignatureError, as a XML file
    without ds:Signature does in ``verify_document``.
    """
    now = _utc(now) if now is not None else dt.datetime.now(dt.timezone.utc)
    data = bytes(data) if isinstance(data, bytearray) else data
    reader = _open(data, max_bytes)
    fields = _signature_fields(reader)
    regular = [f for f in fields if str(_get(f[1], "/Type", "/Sig")) != "/DocTimeStamp"]
    if not regular:
        raise SignatureError("dokument PDF nie zawiera podpisu elektronicznego")
    unsupported = [f"podpis w polu „{name}” ma format {_get(value, '/SubFilter') or '(nieokreślony)'}, którego nie "
                   "obsługujemy (przyjmujemy PAdES: ETSI.CAdES.detached oraz adbe.pkcs7.detached)"
                   for name, value, _ in regular if str(_get(value, "/SubFilter", "")) not in _CMS_SUBFILTERS]
    if unsupported:
        # a readable signed document this verifier cannot judge: refused as invalid, not as unreadable
        return VerificationReport(valid=False, format=None, signer=None, signed_at=None, signed_content=None,
                                  errors=unsupported)
    checks = _check_signatures(reader, regular, fields, trust_anchors, now)

    errors: list[str] = []
    warnings: list[str] = []
    several = len(checks) > 1
    for check in checks:
        prefix = f"podpis nr {check.number} (pole „{check.field_name}”): " if several else ""
        errors.extend(prefix + m for m in check.errors + check.trust_errors if prefix + m not in errors)
        warnings.extend(prefix + m for m in check.warnings if prefix + m not in warnings)
    first, last = checks[0], checks[-1]
    signer = trust.signer_from_certificate(first.leaf, warnings) if first.leaf is not None else None
    if several:
        others = [trust.signer_from_certificate(c.leaf, []).name or "(bez nazwy)" for c in checks[1:] if c.leaf]
        count = len(checks)
        noun = "podpisy" if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14) else "podpisów"
        warnings.append(f"dokument zawiera {count} {noun}; jako podpisującego podano autora (podpis nr 1); "
                        f"dokument podpisali także: {', '.join(others) or '(certyfikaty nieczytelne)'}")

    level = None
    if last.embedded is not None:
        with _unreadable("dokument PDF ma uszkodzone znaczniki czasu dokumentu"):
            level = _document_level(reader, _document_timestamps(reader, fields, warnings),
                                    last.embedded.signed_revision)
    if level:
        warnings.append("dane do weryfikacji zapisane w dokumencie (DSS) nie zostały sprawdzone")
    warnings.append("nie sprawdzono, czy certyfikat nie został unieważniony (CRL/OCSP); weryfikacja nie korzysta "
                    "z sieci")

    intact = all(not c.errors for c in checks) and last.end is not None
    return VerificationReport(valid=not errors, format=_format(first, level), signer=signer,
                              signed_at=first.signed_at, signed_content=data[:last.end] if intact else None,
                              errors=errors, warnings=warnings)


def _check_signatures(reader: PdfFileReader, regular, fields, anchors: list[x509.Certificate],
                      now: dt.datetime) -> list[_Checked]:
    """Each /Sig signature checked, in signing order (by the revision it signs), numbered from 1."""
    checks = [_load(reader, name, value, field_ref) for name, value, field_ref in regular]
    checks.sort(key=lambda c: c.embedded.signed_revision if c.embedded is not None else -1)
    timestamp_fields = {name for name, value, _ in fields if str(_get(value, "/Type", "")) == "/DocTimeStamp"}
    with _unreadable("dokument PDF ma uszkodzoną strukturę wersji (aktualizacji przyrostowych)"):
        for index, check in enumerate(checks):
            check.number = index + 1
            if check.embedded is None:
                continue
            changed = _changed_after(reader, check.embedded.signed_revision)
            if changed > MAX_CHANGED_OBJECTS:
                check.errors.append(f"po złożeniu podpisu dopisano lub zmieniono {changed} obiektów dokumentu "
                                    f"(dopuszczalne {MAX_CHANGED_OBJECTS}); tak dużych zmian nie analizujemy")
            try:
                check.embedded.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY,
                                                      skip_diff=changed > MAX_CHANGED_OBJECTS)
            except Exception:  # the byte range cannot be read or the revisions cannot be compared
                check.errors.append("nie da się ustalić, którą część dokumentu obejmuje podpis (uszkodzony zakres "
                                    "ByteRange lub struktura wersji)")
                continue
            _integrity(check)
            _coverage(check)
            _modifications(check, reader, {c.field_name for c in checks[index + 1:]} | timestamp_fields)
            _pades_attributes(check)
            _timestamp_token(check, anchors)
    for check in checks:
        _trust_at_signing_time(check, anchors, now)
    return checks


def _pades_attributes(check: _Checked) -> None:
    signed_attributes = check.embedded.signer_info["signed_attrs"]
    has_ess = _has_attribute(signed_attributes, "signing_certificate_v2") or \
        _has_attribute(signed_attributes, "signing_certificate")
    check.pades = check.subfilter in _PADES_SUBFILTERS and has_ess
    if check.subfilter in _PADES_SUBFILTERS and not has_ess:
        check.warnings.append("podpis deklaruje format PAdES, lecz nie zawiera podpisanego wskazania certyfikatu "
                              "(signing-certificate-v2); potraktowano go jak zwykły podpis PDF")
    try:
        check.declared_time = _utc(check.embedded.self_reported_timestamp)
    except Exception:  # an unreadable /M or signingTime
        check.warnings.append("czasu podpisu zadeklarowanego w podpisie nie da się odczytać")


def _trust_at_signing_time(check: _Checked, anchors: list[x509.Certificate], now: dt.datetime) -> None:
    moment = check.signed_at
    if moment is None:
        check.warnings.append("podpis nie podaje czasu złożenia; ważność certyfikatu sprawdzono na chwilę weryfikacji")
    elif moment > now + FUTURE_TOLERANCE:
        check.trust_errors.append(f"czas złożenia podpisu ({moment:%Y-%m-%d %H:%M} UTC) jest późniejszy niż chwila "
                                  "weryfikacji")
    if check.leaf is None:
        return
    check.trust_errors += trust.chain_problems(check.leaf, check.intermediates, anchors, moment or now)
    if moment is not None and now > check.leaf.not_valid_after_utc >= moment:
        check.warnings.append("certyfikat wygasł po złożeniu podpisu; " + (
            "czas podpisu potwierdza znacznik czasu" if check.stamped_time else
            "czas podpisu jest deklaracją podpisującego, niepotwierdzoną znacznikiem czasu"))


# -- embedded files ---------------------------------------------------------------------------------

def _attachment_names(handler) -> list[tuple[str, bytes]]:
    """Names and digests (of the stored bytes) of the attachments: to tell whether an update changed them."""
    found = []
    for name, spec in _file_specs(handler, limit=MAX_EMBEDDED_FILES):
        stream = _attachment_stream(spec)
        found.append((name, hashlib.sha256(stream.encoded_data).digest() if stream is not None else b""))
    return sorted(found)


def _attachment_stream(spec: generic.DictionaryObject) -> generic.StreamObject | None:
    streams = _get(spec, "/EF")
    stream = _get(streams, "/UF") or _get(streams, "/F")
    return stream if isinstance(stream, generic.StreamObject) else None


def _file_specs(handler, *, limit: int) -> list[tuple[str, generic.DictionaryObject]]:
    """(name, file specification) of the /EmbeddedFiles name tree, then of file-attachment annotations."""
    found: list[tuple[str, generic.DictionaryObject]] = []
    names = _get(_get(handler.root, "/Names"), "/EmbeddedFiles")
    stack = [(names, 0)] if names is not None else []
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        node = node.get_object() if isinstance(node, generic.IndirectObject) else node
        if depth > MAX_TREE_DEPTH or id(node) in seen or not isinstance(node, generic.DictionaryObject):
            continue
        seen.add(id(node))
        pairs = _get(node, "/Names")
        if isinstance(pairs, generic.ArrayObject):
            for index in range(0, len(pairs) - 1, 2):
                spec = pairs[index + 1]
                if isinstance(spec, generic.DictionaryObject):
                    found.append((_text(pairs[index]) or "", spec))
                if len(found) > limit:
                    raise SignatureError(f"dokument PDF zawiera więcej niż {limit} załączników")
        kids = _get(node, "/Kids")
        if isinstance(kids, generic.ArrayObject):
            stack.extend((kid, depth + 1) for kid in reversed(kids))
    for page in _pages(handler):
        annots = _get(page, "/Annots")
        if not isinstance(annots, generic.ArrayObject):
            continue
        for annot in annots:
            annot = annot.get_object() if isinstance(annot, generic.IndirectObject) else annot
            if str(_get(annot, "/Subtype", "")) != "/FileAttachment":
                continue
            spec = _get(annot, "/FS")
            if isinstance(spec, generic.DictionaryObject):
                found.append(("", spec))
            if len(found) > limit:
                raise SignatureError(f"dokument PDF zawiera więcej niż {limit} załączników")
    return [(_text(_get(spec, "/UF")) or _text(_get(spec, "/F")) or key, spec) for key, spec in found]


def embedded_files(pdf_bytes: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
                   max_files: int = MAX_EMBEDDED_FILES) -> dict[str, bytes]:
    """The files embedded in a PDF, by name: call it on ``VerificationReport.signed_content``.

    Both the /EmbeddedFiles name tree and file-attachment annotations are read. A file named twice with
    different contents is refused (which one a reader shows would be the reader's choice); at most
    ``max_files`` files of at most ``max_bytes`` together.
    """
    reader = _open(pdf_bytes, max_bytes)
    files: dict[str, bytes] = {}
    total = 0
    with _unreadable("załączników dokumentu PDF nie da się odczytać"):
        specs = _file_specs(reader, limit=max_files)
        for name, spec in specs:
            stream = _attachment_stream(spec)
            if stream is None:
                continue
            content = stream.data
            total += len(content)
            if total > max_bytes:
                raise SignatureError(f"załączniki dokumentu PDF są za duże: ponad {max_bytes} bajtów")
            if name in files and files[name] != content:
                raise SignatureError(f"dokument PDF zawiera dwa różne załączniki o nazwie „{name}”")
            files[name] = content
    return files


def signed_form_xml(report: VerificationReport, name: str) -> bytes | None:
    """The file ``name`` (e.g. the form's "<code>.xml") embedded in the signed revision, or None.

    None when the signature is not valid or the signed revision carries no such file: only what the
    signer signed is ever read, never a file attached after signing.
    """
    if not report.valid or report.signed_content is None or not is_pdf(report.signed_content):
        return None
    return embedded_files(report.signed_content).get(name)
