"""Dereferencing a ds:Reference and applying its transforms (XML Signature 1.1, section 4.4.3 and 6.6).

signxml applies the enveloped-signature, base64 and canonicalization transforms and silently skips the
rest, in a fixed order; real Polish signers also use the XPath transform
(``not(ancestor-or-self::ds:Signature)``) and XPath Filter 2.0 (RFC 3653), which KSeF's XAdES profile
lists among the accepted ones. This module applies every transform in document order over an explicit
node-set, and refuses what it does not implement instead of skipping it.

A node-set is kept in the shape signatures use in practice: a few whole subtrees ("apexes") with some
subtrees cut out ("holes"), optionally with the document's top-level processing instructions.
A transform whose result has another shape (a hole with a signed island inside, a text node kept without
its element) is refused as unsupported; so is an XPath expression that would be costly to evaluate at
every node.
"""
from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass, field
from typing import Callable

from lxml import etree
from signxml.algorithms import CanonicalizationMethod

from platforma.esign.parsing import SignatureError, parse_untrusted

DS = "http://www.w3.org/2000/09/xmldsig#"
DSIG_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
XML_NS = "http://www.w3.org/XML/1998/namespace"

MAX_TRANSFORMS = 10
MAX_XPATH_LENGTH = 1000

#: axes that make a per-node XPath expression cost O(n) at every node (XMLDSig 6.6.3 evaluates it per node)
_COSTLY_PER_NODE = re.compile(r"//|descendant|following|preceding|\bid\s*\(|document\s*\(")


class TransformError(Exception):
    """A reference that cannot be processed; the message is Polish and names the reason."""


@dataclass
class NodeSet:
    """Whole subtrees (apexes) minus cut-out subtrees (holes) of one parsed document."""

    tree: etree._ElementTree
    apexes: list[etree._Element]
    holes: list[etree._Element] = field(default_factory=list)
    #: the document's top-level processing instructions (and comments) belong to the set (URI="")
    whole_document: bool = False
    #: comments belong to the set (only for "#xpointer(...)" references, XMLDSig 4.4.3.3)
    comments: bool = False

    @property
    def root(self) -> etree._Element:
        return self.tree.getroot()

    def is_whole_subtree_of_root(self) -> bool:
        return len(self.apexes) == 1 and self.apexes[0] is self.root

    def inclusion(self) -> dict[etree._Element, bool]:
        """Whether each element of the document belongs to the set (its attributes and text follow it)."""
        apex_ids = {id(e) for e in self.apexes}
        hole_ids = {id(e) for e in self.holes}
        state: dict[etree._Element, bool] = {}
        for element in self.root.iter(etree.Element):
            if id(element) in hole_ids:
                state[element] = False
            elif id(element) in apex_ids:
                state[element] = True
            else:
                parent = element.getparent()
                state[element] = state.get(parent, False) if parent is not None else False
        return state


def node_set_from_inclusion(tree: etree._ElementTree, included: dict[etree._Element, bool], *,
                            whole_document: bool, comments: bool) -> NodeSet:
    """Rebuild apexes and holes; refuse a set that is not "subtrees minus subtrees"."""
    apexes: list[etree._Element] = []
    holes: list[etree._Element] = []
    inside_hole: dict[etree._Element, bool] = {}
    root = tree.getroot()
    for element in root.iter(etree.Element):
        parent = element.getparent()
        parent_in = included[parent] if parent is not None else False
        parent_hole = inside_hole.get(parent, False) if parent is not None else False
        if included[element]:
            if parent_hole:
                raise TransformError("przekształcenie wybiera fragment wewnątrz wyciętej części dokumentu; "
                                     "taki zbiór węzłów nie jest obsługiwany")
            if not parent_in:
                apexes.append(element)
            inside_hole[element] = False
        else:
            is_hole = parent_in
            if is_hole:
                holes.append(element)
            inside_hole[element] = parent_hole or is_hole
    return NodeSet(tree, apexes, holes, whole_document=whole_document and included[root], comments=comments)


# -- dereferencing (XMLDSig 4.4.3.2) ---------------------------------------------------------------

_ID_QUERY = etree.XPath("//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $v]")


def element_by_id(tree: etree._ElementTree, value: str) -> etree._Element:
    """The one element with Id/ID/id (or xml:id) = value; a duplicate is refused (signature wrapping)."""
    found = _ID_QUERY(tree, v=value)
    if len(found) > 1:
        raise TransformError(f"identyfikator „{value}” występuje w dokumencie {len(found)} razy; "
                             "to typowy ślad ataku przez przeklejenie podpisanej treści (signature wrapping)")
    if not found:
        raise TransformError(f"podpis odwołuje się do elementu „#{value}”, którego nie ma w dokumencie")
    return found[0]


def dereference(tree: etree._ElementTree, uri: str | None) -> NodeSet:
    if uri is None:
        raise TransformError("odwołanie (ds:Reference) bez atrybutu URI nie jest obsługiwane")
    if uri == "":
        return NodeSet(tree, [tree.getroot()], whole_document=True)
    if uri == "#xpointer(/)":
        return NodeSet(tree, [tree.getroot()], whole_document=True, comments=True)
    match = re.fullmatch(r"#xpointer\(id\(['\"]([^'\"]+)['\"]\)\)", uri)
    if match:
        return NodeSet(tree, [element_by_id(tree, match.group(1))], comments=True)
    if uri.startswith("#xpointer("):
        raise TransformError(f"wyrażenie XPointer „{uri}” nie jest obsługiwane")
    if uri.startswith("#"):
        return NodeSet(tree, [element_by_id(tree, uri[1:])])
    raise TransformError(f"podpis odwołuje się do zewnętrznego zasobu „{uri}”, którego nie można sprawdzić; "
                         "podpisy zewnętrzne (detached) nie są przyjmowane")


# -- transforms -----------------------------------------------------------------------------------

Data = NodeSet | bytes


@dataclass
class TransformContext:
    """What a transform needs besides its input: the signature holding the reference."""

    signature: etree._Element
    #: maps a ds:XPath element of the verified SignedInfo to the same element in the document, for here()
    locate: Callable[[etree._Element], etree._Element]


@dataclass
class Transformed:
    """The octets that were digested and what they came from."""

    octets: bytes
    #: the last node-set before it became octets (None when the data never was a node-set)
    nodes: NodeSet | None
    #: a base64 transform decoded the data (the signed content is the decoded bytes)
    decoded: bool


def apply_transforms(data: Data, transforms: list[etree._Element], context: TransformContext) -> Transformed:
    if len(transforms) > MAX_TRANSFORMS:
        raise TransformError(f"odwołanie ma {len(transforms)} przekształceń; dopuszczalne {MAX_TRANSFORMS}")
    last_nodes = data if isinstance(data, NodeSet) else None
    decoded = False
    for transform in transforms:
        algorithm = transform.get("Algorithm")
        if algorithm == ENVELOPED:
            data = _enveloped(_node_set(data), context.signature)
        elif algorithm == XPATH:
            data = _xpath_filter(_node_set(data), transform, context)
        elif algorithm == FILTER2:
            data = _xpath_filter2(_node_set(data), transform, context)
        elif algorithm == BASE64:
            data, decoded = _base64(data), True
        else:
            data = canonicalize(_node_set(data), _c14n_method(algorithm), _inclusive_prefixes(transform))
        if isinstance(data, NodeSet):
            last_nodes = data
    if isinstance(data, NodeSet):
        # XMLDSig 4.4.3.2: a node-set left at the end is canonicalized with Canonical XML 1.0 (no comments)
        data = canonicalize(data, CanonicalizationMethod.CANONICAL_XML_1_0)
    return Transformed(data, last_nodes, decoded)


def _c14n_method(algorithm: str | None) -> CanonicalizationMethod:
    try:
        return CanonicalizationMethod(algorithm)
    except Exception:
        if algorithm and "xslt" in algorithm.lower():
            raise TransformError("przekształcenie XSLT nie jest obsługiwane") from None
        raise TransformError(f"nieobsługiwane przekształcenie „{algorithm}”") from None


def _inclusive_prefixes(transform: etree._Element) -> list[str] | None:
    element = transform.find("{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces")
    if element is None or element.get("PrefixList") is None:
        return None
    return element.get("PrefixList").split()


def _node_set(data: Data) -> NodeSet:
    if isinstance(data, NodeSet):
        return data
    # XMLDSig 4.4.3.2: octets are parsed into a node-set before a node-set transform
    return _reparse(data)


def _reparse_tree(data: bytes) -> etree._ElementTree:
    try:
        return parse_untrusted(data, what="podpisana treść")
    except SignatureError as exc:
        raise TransformError(str(exc)) from None


def _reparse(data: bytes) -> NodeSet:
    tree = _reparse_tree(data)
    return NodeSet(tree, [tree.getroot()], whole_document=True)


def _enveloped(nodes: NodeSet, signature: etree._Element) -> NodeSet:
    """XMLDSig 6.6.4: remove the signature that holds this reference (its whole subtree) from the node-set."""
    if signature.getroottree().getroot() is not nodes.root:
        return nodes
    inside_signature = {id(signature), *(id(e) for e in signature.iter(etree.Element))}
    if any(id(apex) in inside_signature for apex in nodes.apexes):
        raise TransformError("przekształcenie enveloped-signature usuwa podpisaną treść: odwołanie wskazuje "
                             "wnętrze samego podpisu")
    ancestors = {id(a) for a in signature.iterancestors()}
    if not any(id(apex) in ancestors for apex in nodes.apexes):
        return nodes  # the signature is not in the set: nothing to remove
    if any(id(hole) in ancestors or hole is signature for hole in nodes.holes):
        return nodes  # already cut out
    holes = [hole for hole in nodes.holes if id(hole) not in inside_signature]
    return NodeSet(nodes.tree, nodes.apexes, [*holes, signature], nodes.whole_document, nodes.comments)


def _check_expression(expression: str, *, per_node: bool) -> None:
    if not expression.strip():
        raise TransformError("puste wyrażenie XPath w przekształceniu")
    if len(expression) > MAX_XPATH_LENGTH:
        raise TransformError("wyrażenie XPath w przekształceniu jest za długie")
    if per_node and _COSTLY_PER_NODE.search(expression):
        raise TransformError(f"wyrażenie XPath „{expression.strip()}” jest zbyt kosztowne do obliczenia w każdym "
                             "węźle (osie descendant/following/preceding); nie jest obsługiwane")
    if re.search(r"\b(position|last)\s*\(", expression):
        raise TransformError("wyrażenie XPath z funkcją position() lub last() nie jest obsługiwane")


def _namespaces(element: etree._Element) -> dict[str, str]:
    return {prefix: uri for prefix, uri in element.nsmap.items() if prefix}


def _here(context: TransformContext, xpath_element: etree._Element) -> dict:
    """XMLDSig 6.6.3: here() is the XPath element's text node; its ancestors are those of the element."""
    located = context.locate(xpath_element)
    return {(None, "here"): lambda _ctx: [located]}


def _compile(expression: str, namespaces: dict[str, str], extensions: dict) -> etree.XPath:
    try:
        return etree.XPath(expression, namespaces=namespaces, extensions=extensions)
    except (etree.XPathSyntaxError, etree.XPathEvalError) as exc:
        raise TransformError(f"niepoprawne wyrażenie XPath „{expression.strip()}” ({exc})") from None


def _xpath_filter(nodes: NodeSet, transform: etree._Element, context: TransformContext) -> NodeSet:
    """XMLDSig 6.6.3: keep the nodes of the input for which the expression is true."""
    xpath_element = transform.find(f"{{{DS}}}XPath")
    if xpath_element is None or xpath_element.text is None:
        raise TransformError("przekształcenie XPath bez wyrażenia ds:XPath")
    expression = xpath_element.text
    _check_expression(expression, per_node=True)
    namespaces = _namespaces(xpath_element)
    extensions = _here(context, xpath_element)
    _compile(expression, namespaces, extensions)  # a complete expression on its own
    test = f"boolean({expression})"

    def select(query: str):
        try:
            return etree.XPath(query, namespaces=namespaces, extensions=extensions)(nodes.tree)
        except (etree.XPathError, TypeError) as exc:
            raise TransformError(f"nie udało się obliczyć wyrażenia XPath „{expression.strip()}” ({exc})") from None

    selected = select(f"//*[{test}]")  # kept alive: the ids below are those of these proxies
    true_elements = {id(e) for e in selected}
    # attributes, namespace nodes, text, comments and PIs must follow their element, or the set is not
    # one we can canonicalize by cutting subtrees (and no real signer produces such a set)
    if _mixed_children(select, test, nodes.comments):
        raise TransformError(f"wyrażenie XPath „{expression.strip()}” rozdziela element od jego atrybutów lub "
                             "tekstu; taki zbiór węzłów nie jest obsługiwany")
    before = nodes.inclusion()
    after = {element: included and id(element) in true_elements for element, included in before.items()}
    whole = nodes.whole_document
    if whole:
        top = select(f"count(/processing-instruction()[{test}] | /comment()[{test}])")
        total = select("count(/processing-instruction() | /comment())")
        if top not in (0, total):
            raise TransformError("wyrażenie XPath wybiera tylko część instrukcji przetwarzania dokumentu")
        whole = top == total
    return node_set_from_inclusion(nodes.tree, after, whole_document=whole, comments=nodes.comments)


def _mixed_children(select, test: str, comments: bool) -> bool:
    kinds = ["@*", "namespace::*", "text()", "processing-instruction()"] + (["comment()"] if comments else [])
    parts = []
    for kind in kinds:
        parts.append(f"//*[{test}]/{kind}[not({test})]")
        parts.append(f"//*[not({test})]/{kind}[{test}]")
    return bool(select(f"boolean({' | '.join(parts)})"))


def _xpath_filter2(nodes: NodeSet, transform: etree._Element, context: TransformContext) -> NodeSet:
    """RFC 3653: start from all nodes of the document, apply intersect/subtract/union of the subtrees each
    expression selects (evaluated once, at the document root), then keep the input nodes left in that set."""
    steps = transform.findall(f"{{{DSIG_FILTER2}}}XPath")
    if not steps:
        raise TransformError("przekształcenie XPath Filter 2.0 bez wyrażeń")
    root = nodes.root
    elements = list(root.iter(etree.Element))
    filter_in = {id(e): True for e in elements}
    top_in = True
    for step in steps:
        operation = step.get("Filter")
        if operation not in ("intersect", "subtract", "union"):
            raise TransformError(f"nieznana operacja XPath Filter 2.0: „{operation}”")
        expression = step.text or ""
        _check_expression(expression, per_node=False)
        compiled = _compile(expression, _namespaces(step), _here(context, step))
        try:
            selected = compiled(nodes.tree)
            selects_root = etree.XPath(f"boolean(({expression})[not(parent::node())])", namespaces=_namespaces(step),
                                       extensions=_here(context, step))(nodes.tree)
        except (etree.XPathError, TypeError) as exc:
            raise TransformError(f"nie udało się obliczyć wyrażenia XPath „{expression.strip()}” ({exc})") from None
        if not isinstance(selected, list):
            raise TransformError(f"wyrażenie XPath Filter 2.0 „{expression.strip()}” nie wybiera węzłów")
        marked = set()
        for node in selected:
            if isinstance(node, etree._Element) and not isinstance(node, (etree._Comment, etree._ProcessingInstruction)):
                marked.add(id(node))
            else:
                raise TransformError(f"wyrażenie XPath Filter 2.0 „{expression.strip()}” wybiera węzły inne niż "
                                     "elementy; nie jest obsługiwane")
        in_subtree: dict[int, bool] = {}
        for element in elements:
            parent = element.getparent()
            in_subtree[id(element)] = selects_root or id(element) in marked or (
                parent is not None and in_subtree[id(parent)])
        for element in elements:
            key = id(element)
            if operation == "intersect":
                filter_in[key] = filter_in[key] and in_subtree[key]
            elif operation == "subtract":
                filter_in[key] = filter_in[key] and not in_subtree[key]
            else:
                filter_in[key] = filter_in[key] or in_subtree[key]
        if operation == "intersect":
            top_in = top_in and selects_root
        elif operation == "subtract":
            top_in = top_in and not selects_root
        else:
            top_in = top_in or selects_root
    before = nodes.inclusion()
    after = {element: included and filter_in[id(element)] for element, included in before.items()}
    return node_set_from_inclusion(nodes.tree, after, whole_document=nodes.whole_document and top_in,
                                   comments=nodes.comments)


def _base64(data: Data) -> bytes:
    """XMLDSig 6.6.2: decode the string value of the node-set (or the octets)."""
    if isinstance(data, NodeSet):
        hole_ids = {id(h) for h in data.holes}
        parts: list[str] = []
        for apex in data.apexes:
            parts.extend(_text_outside_holes(apex, hole_ids))
        text = "".join(parts)
    else:
        text = data.decode("ascii", errors="replace")
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise TransformError("dane oznaczone jako base64 nie są poprawnie zakodowane") from None


def _text_outside_holes(element: etree._Element, hole_ids: set[int]) -> list[str]:
    if id(element) in hole_ids:
        return []
    parts = [element.text or ""]
    for child in element:
        if isinstance(child, etree._Element) and not isinstance(child, (etree._Comment, etree._ProcessingInstruction)):
            parts.extend(_text_outside_holes(child, hole_ids))
        parts.append(child.tail or "")
    return parts


# -- canonicalization (C14N 1.0 / 1.1, exclusive C14N) ----------------------------------------------

def detached_copy(element: etree._Element) -> etree._Element:
    """The element as the root of its own document, with every namespace in scope declared on it.

    libxml2 2.14 (lxml 6.1) emits a spurious ``xmlns=""`` two levels below an element canonicalized in place
    under a default namespace, and ``copy.deepcopy`` drops unused namespace declarations that inclusive
    C14N must keep; serializing and re-parsing does neither.
    """
    return etree.fromstring(etree.tostring(element, with_tail=False), _copy_parser())


def _copy_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def canonicalize(nodes: NodeSet, method: CanonicalizationMethod, inclusive_prefixes: list[str] | None = None) -> bytes:
    exclusive = method.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#")
    with_comments = method.value.endswith("#WithComments") and nodes.comments
    c14n_11 = method.value.startswith("http://www.w3.org/2006/12/xml-c14n11")
    out = []
    for apex in nodes.apexes:
        holes = [h for h in nodes.holes if any(a is apex for a in h.iterancestors())]
        paths = [_index_path(apex, h) for h in holes]
        if apex.getparent() is None:
            if not holes:
                target = nodes.tree if nodes.whole_document else apex
            else:
                target = copy.deepcopy(nodes.tree) if nodes.whole_document else detached_copy(apex)
        else:
            target = detached_copy(apex)
            for name, value in ({} if exclusive else _inherited_xml_attributes(apex, c14n_11)).items():
                target.set(name, value)
        if holes:
            copied_root = target.getroot() if isinstance(target, etree._ElementTree) else target
            for hole in [_follow(copied_root, p) for p in paths]:
                _remove_keeping_tail(hole)
        out.append(etree.tostring(target, method="c14n", exclusive=exclusive, with_comments=with_comments,
                                  inclusive_ns_prefixes=inclusive_prefixes))
    return b"".join(out)


def _inherited_xml_attributes(apex: etree._Element, c14n_11: bool) -> dict[str, str]:
    """C14N 1.0 section 2.4 (1.1: only xml:lang and xml:space): xml:* attributes of omitted ancestors."""
    if apex.getparent() is None:
        return {}
    inherited: dict[str, str] = {}
    for ancestor in apex.iterancestors():
        for name, value in ancestor.attrib.items():
            if name.startswith(f"{{{XML_NS}}}") and name not in inherited and name not in apex.attrib:
                local = name.split("}", 1)[1]
                if c14n_11 and local not in ("lang", "space"):
                    continue
                inherited[name] = value
    return inherited


def _index_path(apex: etree._Element, element: etree._Element) -> list[int]:
    path = []
    while element is not apex:
        parent = element.getparent()
        path.append(parent.index(element))
        element = parent
    return path[::-1]


def _follow(element: etree._Element, path: list[int]) -> etree._Element:
    for index in path:
        element = element[index]
    return element


def _remove_keeping_tail(element: etree._Element) -> None:
    parent = element.getparent()
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
