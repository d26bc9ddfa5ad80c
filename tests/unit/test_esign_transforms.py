"""The XPath (XMLDSig 6.6.3) and XPath Filter 2.0 (RFC 3653) transforms that Polish signers use, and the
node-set canonicalization under them.

Each signature here is made by signxml's XAdESSigner and then given other transforms on its document
reference; the expected digest is computed independently, as C14N of the letter before it was signed,
and SignedInfo is re-signed with the signer's key. So the verifier must derive exactly the signed bytes.
"""
from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree
from signxml.algorithms import CanonicalizationMethod

from platforma.esign import verify_document
from platforma.esign.transforms import (
    NodeSet,
    TransformContext,
    TransformError,
    apply_transforms,
    canonicalize,
    dereference,
)
from tests.unit.test_esign_pki import LETTER, NOW, make_pki, resign, sign

DS = "http://www.w3.org/2000/09/xmldsig#"
N = {"ds": DS, "wnio": "http://crd.gov.pl/wzor/2013/12/12/1410/"}
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"


@pytest.fixture(scope="module")
def pki():
    return make_pki("rsa")


def transforms(*items: str) -> etree._Element:
    return etree.fromstring(f'<ds:Transforms xmlns:ds="{DS}" xmlns:wnio="{N["wnio"]}" '
                            f'xmlns:dsig-xpath="{FILTER2}">{"".join(items)}</ds:Transforms>')


def xpath(expression: str) -> str:
    return f'<ds:Transform Algorithm="{XPATH}"><ds:XPath>{expression}</ds:XPath></ds:Transform>'


def filter2(*steps: tuple[str, str]) -> str:
    inner = "".join(f'<dsig-xpath:XPath Filter="{op}">{expression}</dsig-xpath:XPath>' for op, expression in steps)
    return f'<ds:Transform Algorithm="{FILTER2}">{inner}</ds:Transform>'


def c14n(algorithm: str = EXC) -> str:
    return f'<ds:Transform Algorithm="{algorithm}"/>'


def resigned(pki, document: bytes, new_transforms: etree._Element, expected: bytes, uri: str = "",
             stylesheet: str | None = None) -> bytes:
    """A XAdES signature of ``document`` whose document reference uses ``new_transforms``."""
    root = etree.fromstring(sign(document, pki))
    if stylesheet:  # signxml's signer keeps only the root element; put the processing instruction back
        root.addprevious(etree.ProcessingInstruction("xml-stylesheet", stylesheet))
    reference = root.find(".//ds:SignedInfo/ds:Reference", N)
    reference.set("URI", uri)
    reference.replace(reference.find("ds:Transforms", N), new_transforms)
    reference.find("ds:DigestValue", N).text = base64.b64encode(hashlib.sha256(expected).digest()).decode()
    resign(root, pki.leaf.key)
    return etree.tostring(root.getroottree())


def unsigned_c14n(document: bytes, exclusive: bool = True) -> bytes:
    return etree.tostring(etree.fromstring(document).getroottree(), method="c14n", exclusive=exclusive)


def check(data: bytes, pki):
    return verify_document(data, trust_anchors=pki.anchors, at=NOW)


# -- whole letters signed with the transforms real signers use --------------------------------------

@pytest.mark.parametrize("steps", [
    [xpath("not(ancestor-or-self::ds:Signature)"), c14n()],
    [xpath("not(ancestor-or-self::*[local-name()='Signature'])"), c14n()],
    [filter2(("subtract", "/descendant::ds:Signature")), c14n()],
    [filter2(("subtract", "here()/ancestor::ds:Signature[1]")), c14n()],
    [filter2(("intersect", "/"), ("subtract", "//ds:Signature")), c14n()],
    [filter2(("intersect", "//wnio:Dokument"), ("subtract", "//ds:Signature"), ("union", "//wnio:Wartosc")), c14n()],
    [xpath("not(ancestor-or-self::ds:Signature)")],  # no c14n: Canonical XML 1.0 by default
], ids=["xpath", "xpath-local-name", "filter2-subtract", "filter2-here", "filter2-intersect-subtract",
        "filter2-union", "xpath-default-c14n"])
def test_a_letter_signed_with_xpath_transforms_is_accepted(pki, steps):
    exclusive = len(steps) > 1
    data = resigned(pki, LETTER, transforms(*steps), unsigned_c14n(LETTER, exclusive))
    report = check(data, pki)
    assert report.errors == [] and report.valid
    assert report.signed_xml.find(".//ds:Signature", N) is None


def test_a_change_under_an_xpath_transform_is_still_detected(pki):
    data = resigned(pki, LETTER, transforms(xpath("not(ancestor-or-self::ds:Signature)"), c14n()),
                    unsigned_c14n(LETTER))
    assert check(data.replace("niezaleganiu".encode(), "zaleganiu".encode()), pki).errors == [
        "zmieniono treść podpisanego dokumentu"]


def test_top_level_processing_instructions_are_signed_with_uri_empty(pki):
    """XMLDSig 4.4.3.2: URI="" is the whole document, its processing instructions included."""
    document = b'<?xml-stylesheet type="text/xsl" href="pismo.xsl"?>' + LETTER
    data = resigned(pki, LETTER, transforms(xpath("not(ancestor-or-self::ds:Signature)"), c14n()),
                    unsigned_c14n(document), stylesheet='type="text/xsl" href="pismo.xsl"')
    assert data.startswith(b"<?xml-stylesheet")
    assert check(data, pki).valid
    changed = data.replace(b"pismo.xsl", b"inne.xsl")
    assert check(changed, pki).errors == ["zmieniono treść podpisanego dokumentu"]


def test_a_letter_in_a_default_namespace_verifies(pki):
    """Regression: libxml2 2.14 adds xmlns="" when a nested element is canonicalized in place."""
    document = (b'<Dokument xmlns="http://crd.gov.pl/wzor/2013/12/12/1410/"><DaneDokumentu><Adresat><Nazwa>Urz\xc4\x85d'
                b'</Nazwa></Adresat></DaneDokumentu></Dokument>')
    assert check(sign(document, pki), pki).valid
    assert check(sign(document, pki, enveloping=True), pki).valid


def test_part_of_a_letter_signed_through_filter2_is_refused_for_coverage(pki):
    """Only TrescDokumentu is signed: the digest matches, but the addressee could be forged."""
    content = etree.fromstring(LETTER).find("wnio:TrescDokumentu", N)
    expected = etree.tostring(etree.fromstring(etree.tostring(content)), method="c14n", exclusive=True)
    data = resigned(pki, LETTER, transforms(filter2(("intersect", "//wnio:TrescDokumentu")), c14n()), expected)
    report = check(data, pki)
    assert report.references[0].intact
    assert report.errors == ["podpis obejmuje tylko część dokumentu; pozostała treść mogła zostać dopisana lub "
                             "zmieniona bez naruszenia podpisu"]


@pytest.mark.parametrize("step, message", [
    (xpath("not(//ds:Signature)"), "zbyt kosztowne"),
    (xpath("position() = 1"), "position() lub last()"),
    (xpath("not(ancestor-or-self::ds:Signature"), "niepoprawne wyrażenie XPath"),
    (xpath("not(self::text())"), "rozdziela element od jego atrybutów lub tekstu"),
    (filter2(("subtract", "//wnio:DaneDokumentu"), ("union", "//wnio:Adresat")), "wewnątrz wyciętej części"),
    (filter2(("subtract", "//@format")), "węzły inne niż elementy"),
    (filter2(("xor", "/")), "nieznana operacja"),
    ('<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>', "XSLT nie jest obsługiwane"),
    ('<ds:Transform Algorithm="urn:nieznane"/>', "nieobsługiwane przekształcenie"),
])
def test_unsupported_or_costly_transforms_are_refused_by_name(pki, step, message):
    data = resigned(pki, LETTER, transforms(step, c14n()), b"")
    report = check(data, pki)
    assert not report.valid
    assert any(message in e for e in report.errors), report.errors


# -- node-sets and canonicalization directly -------------------------------------------------------

def _tree(xml: bytes) -> etree._ElementTree:
    return etree.fromstring(xml).getroottree()


def test_inclusive_c14n_of_an_element_keeps_inherited_xml_attributes_and_namespaces():
    """C14N 1.0, 2.4: xml:lang of an omitted ancestor, and every namespace in scope, appear on the apex."""
    tree = _tree(b'<a xmlns="urn:a" xmlns:u="urn:unused" xml:lang="pl"><b Id="x"><c>t</c></b></a>')
    nodes = dereference(tree, "#x")
    assert canonicalize(nodes, CanonicalizationMethod.CANONICAL_XML_1_0) == \
        b'<b xmlns="urn:a" xmlns:u="urn:unused" Id="x" xml:lang="pl"><c>t</c></b>'
    assert canonicalize(nodes, CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0) == \
        b'<b xmlns="urn:a" Id="x"><c>t</c></b>'


def test_comments_are_kept_only_for_xpointer_references():
    tree = _tree(b'<a Id="x"><!-- uwaga --><b/></a>')
    with_comments = CanonicalizationMethod.CANONICAL_XML_1_0_WITH_COMMENTS
    assert canonicalize(dereference(tree, "#x"), with_comments) == b'<a Id="x"><b></b></a>'
    assert canonicalize(dereference(tree, "#xpointer(id('x'))"), with_comments) == b'<a Id="x"><!-- uwaga --><b></b></a>'
    assert canonicalize(dereference(tree, "#xpointer(/)"), with_comments) == b'<a Id="x"><!-- uwaga --><b></b></a>'


def test_a_hole_keeps_the_text_that_follows_it():
    tree = _tree(b'<a>przed<s:Signature xmlns:s="http://www.w3.org/2000/09/xmldsig#"/>po</a>')
    signature = tree.getroot()[0]
    nodes = NodeSet(tree, [tree.getroot()], [signature], whole_document=True)
    assert canonicalize(nodes, CanonicalizationMethod.CANONICAL_XML_1_0) == b"<a>przedpo</a>"


def test_the_base64_transform_decodes_the_text_of_the_node_set():
    tree = _tree(b'<o Id="x">  V2l0YWogZ21pbm8h\n</o>')
    context = TransformContext(tree.getroot(), lambda e: e)
    result = apply_transforms(dereference(tree, "#x"), [etree.fromstring(
        '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>')], context)
    assert result.octets == b"Witaj gmino!" and result.decoded
    with pytest.raises(TransformError, match="base64"):
        apply_transforms(dereference(_tree(b'<o Id="x">nie*base64</o>'), "#x"), [etree.fromstring(
            '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>')], context)


@pytest.mark.parametrize("uri, message", [
    ("http://example.invalid/plik.xml", "zewnętrznego zasobu"),
    ("plik.png", "detached"),
    ("#xpointer(//a)", "XPointer"),
    (None, "bez atrybutu URI"),
])
def test_references_that_cannot_be_checked_here(uri, message):
    with pytest.raises(TransformError, match=message):
        dereference(_tree(b"<a/>"), uri)
