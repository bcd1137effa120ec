"""domxml parses a domain's XML with expat into the few elements the facts need: the
tree and the parse errors are ElementTree's own (the reference here), for XML of every
shape: namespaces, entities, CDATA, comments, text after children, broken documents."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhook.domxml import _parse, parse_domain_xml
from policyhook.errors import PolicyError


def reference(text):
    """(tag, attributes, text, children) as ElementTree has them, or its error's words."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        return str(e)

    def tree(node):
        return (node.tag, dict(node.attrib), node.text or "", [tree(c) for c in node])
    return tree(root)


def ours(text):
    try:
        root = _parse(text)
    except Exception as e:  # noqa: BLE001 - the words are what is compared
        return str(e)

    def tree(node):
        return (node.tag, dict(node.attrib), "".join(node.text), [tree(c) for c in node.children])
    return tree(root)


TAGS = ["domain", "name", "uuid", "vcpu", "cputune", "vcpupin", "emulatorpin", "iothreads", "iothreadids",
        "iothread", "q:commandline", "x"]
texts = st.sampled_from(["", "2", " 4 ", "a&amp;b", "&lt;", "<![CDATA[x<y]]>", "<!-- c -->", "&e;", "&u;",
                         "&#233;", "\u00e9t\u00e9", "x\ny"])
attrs = st.dictionaries(st.sampled_from(["vcpu", "cpuset", "id", "type", "current", "q:x"]),
                        st.sampled_from(["0", "1-2", "", "a&amp;b", "&e;"]), max_size=2)


def element(children):
    return st.builds(lambda tag, a, text, kids, tail: "<%s%s>%s%s</%s>%s" % (
        tag, "".join(" %s='%s'" % kv for kv in a.items()), text, "".join(kids), tag, tail),
        st.sampled_from(TAGS), attrs, texts, st.lists(children, max_size=3), texts)


documents = st.builds(
    lambda prolog, root, ns: prolog + root.replace("<domain", "<domain" + ns, 1),
    st.sampled_from(["", "<?xml version='1.0'?>", "<!DOCTYPE d [<!ENTITY e 'v'>]>",
                     "<!DOCTYPE d [<!ENTITY e SYSTEM 'x'>]>", "<!-- c -->", "\ufeff"]),
    st.recursive(st.sampled_from(["<vcpu>2</vcpu>", "<name>vm</name>", "<x/>"]), element, max_leaves=12),
    st.sampled_from(["", " xmlns:q='urn:q'", " xmlns='urn:d'"]))


@settings(max_examples=400, deadline=None)
@given(st.one_of(documents, st.text(max_size=60), documents.map(lambda d: d[:len(d) // 2])))
def test_the_tree_and_the_errors_are_elementtrees(text):
    assert ours(text) == reference(text)


@pytest.mark.parametrize("text,error", [
    ("", "domain XML does not parse: no element found: line 1, column 0"),
    ("<domain><name>&foo;</name></domain>", "domain XML does not parse: undefined entity: line 1, column 14"),
    ("<!DOCTYPE _[<!ENTITY n SYSTEM 'x'>]><domain><name>&n;</name></domain>",
     "domain XML does not parse: undefined entity &n;: line 1, column 50"),
    ("<domain/><x/>", "domain XML does not parse: junk after document element: line 1, column 9"),
    ("<domain xmlns='urn:d'><vcpu>1</vcpu></domain>", "expected <domain> XML, got <{urn:d}domain>"),
])
def test_errors(text, error):
    with pytest.raises(PolicyError) as e:
        parse_domain_xml(text)
    assert str(e.value) == error
