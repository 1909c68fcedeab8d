# cython: language_level=3, boundscheck=False, wraparound=False
"""The converter's value builder, in C: an element's xmltodict value, read straight from
libxml2's nodes instead of through one Python proxy object per element.

It is the only value builder: values.Values configures it and adds the small pieces the
streaming writers need; there is no Python fallback, so the engine does not load without
this extension. Tests compare its output with xmltodict's (tests/unit/test_differential.py).
Only libxml2's structs are read here, no libxml2 function is called, so nothing links against
libxml2 beyond what lxml provides.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport strlen
from lxml.includes cimport tree
cimport lxml.includes.etreepublic as cetree

cetree.import_lxml__etree()

cdef enum:
    KEEP = 0
    STRIP = 1
    EXPAND = 2


cdef inline str _str(const unsigned char* text):
    return PyUnicode_DecodeUTF8(<const char*>text, strlen(<const char*>text), NULL)


cdef class Builder:
    cdef int mode
    cdef str attr_prefix
    cdef str text_key
    cdef frozenset force
    cdef bint has_force
    cdef bint strip
    cdef object infer
    cdef int max_depth
    cdef object depth_error

    def __init__(self, str mode, str attr_prefix, str text_key, frozenset force, bint strip,
                 infer, int max_depth, depth_error):
        self.mode = {"keep": KEEP, "strip": STRIP, "expand": EXPAND}[mode]
        self.attr_prefix = attr_prefix
        self.text_key = text_key
        self.force = force
        self.has_force = len(force) > 0
        self.strip = strip
        self.infer = infer
        self.max_depth = max_depth
        self.depth_error = depth_error  # called with a line number; raises

    # -- names ------------------------------------------------------------------------
    cdef str _name(self, const unsigned char* name, tree.xmlNs* ns):
        if ns is NULL or ns.href is NULL or self.mode == STRIP:
            return _str(name)
        if self.mode == EXPAND:
            return _str(ns.href) + ":" + _str(name)
        if ns.prefix is NULL:
            return _str(name)
        return _str(ns.prefix) + ":" + _str(name)

    def key(self, cetree._Element element):
        cdef tree.xmlNode* node = element._c_node
        return self._name(node.name, node.ns)

    # -- attributes and declarations ------------------------------------------------------
    cdef object _attribute_value(self, tree.xmlAttr* attribute):
        cdef tree.xmlNode* part = attribute.children
        cdef str value
        if part is NULL:
            value = ""
        elif part.next is NULL:
            value = _str(part.content) if part.content is not NULL else ""
        else:
            pieces = []
            while part is not NULL:
                if part.content is not NULL:
                    pieces.append(_str(part.content))
                part = part.next
            value = "".join(pieces)
        if self.infer is not None:
            return self.infer(value)
        return value

    cdef int _add_attributes(self, tree.xmlNode* node, dict entries) except -1:
        """Declarations and attributes in xmltodict's order into `entries`."""
        cdef tree.xmlNs* ns
        cdef tree.xmlAttr* attribute
        cdef str prefix = self.attr_prefix
        if node.nsDef is not NULL and self.mode == KEEP:
            ns = node.nsDef
            while ns is not NULL:
                if ns.prefix is NULL:
                    entries[prefix + "xmlns"] = _str(ns.href) if ns.href is not NULL else ""
                else:
                    entries[prefix + "xmlns:" + _str(ns.prefix)] = (
                        _str(ns.href) if ns.href is not NULL else "")
                ns = ns.next
        attribute = node.properties
        while attribute is not NULL:
            entries[prefix + self._name(attribute.name, attribute.ns)] = (
                self._attribute_value(attribute))
            attribute = attribute.next
        if node.nsDef is not NULL and self.mode == EXPAND:
            declared = {}
            ns = node.nsDef
            while ns is not NULL:
                # expat reports an undeclaration (xmlns="") as None
                declared["" if ns.prefix is NULL else _str(ns.prefix)] = (
                    _str(ns.href) if ns.href is not NULL and ns.href[0] != 0 else None)
                ns = ns.next
            entries[prefix + "xmlns"] = declared
        return 0

    def attributes(self, cetree._Element element):
        cdef dict entries = {}
        self._add_attributes(element._c_node, entries)
        return list(entries.items())

    # -- values -------------------------------------------------------------------------
    def value(self, cetree._Element element, int depth):
        return self._value(element._c_node, depth)

    cdef object _value(self, tree.xmlNode* node, int depth):
        cdef tree.xmlNode* child
        cdef dict d = None
        cdef object text = None
        cdef object value
        cdef object existing
        cdef str key
        if depth > self.max_depth:
            self.depth_error(node.line if node.line < 65535 else None)
        if node.properties is not NULL or (node.nsDef is not NULL and self.mode != STRIP):
            d = {}
            self._add_attributes(node, d)
            if not d:
                d = None
        child = node.children
        while child is not NULL:
            if child.type == tree.XML_ELEMENT_NODE:
                if d is None:
                    d = {}
                key = self._name(child.name, child.ns)
                value = self._value(child, depth + 1)
                existing = d.get(key, d)
                if existing is d:
                    if self.has_force and key in self.force:
                        d[key] = [value]
                    else:
                        d[key] = value
                elif type(existing) is list:
                    (<list>existing).append(value)
                else:
                    d[key] = [existing, value]
            elif child.type == tree.XML_TEXT_NODE or child.type == tree.XML_CDATA_SECTION_NODE:
                if child.content is not NULL and child.content[0] != 0:
                    if text is None:
                        text = _str(child.content)
                    else:
                        text = text + _str(child.content)
            child = child.next
        if text is not None:
            if self.strip:
                text = text.strip()
                if not text:
                    text = None
            if text is not None and self.infer is not None:
                text = self.infer(text)
        if d is None:
            return text
        if text is not None:
            existing = d.get(self.text_key, d)
            if existing is d:
                if self.has_force and self.text_key in self.force:
                    d[self.text_key] = [text]
                else:
                    d[self.text_key] = text
            elif type(existing) is list:
                (<list>existing).append(text)
            else:
                d[self.text_key] = [existing, text]
        return d

    # -- depth only ---------------------------------------------------------------------
    def check_depth(self, cetree._Element element, int depth):
        """Raise (through depth_error) if the subtree nests deeper than max_depth; for
        formats that never build values (text)."""
        self._check_depth(element._c_node, depth)

    cdef int _check_depth(self, tree.xmlNode* node, int depth) except -1:
        cdef tree.xmlNode* child
        if depth > self.max_depth:
            self.depth_error(node.line if node.line < 65535 else None)
        child = node.children
        while child is not NULL:
            if child.type == tree.XML_ELEMENT_NODE and child.children is not NULL:
                self._check_depth(child, depth + 1)
            elif child.type == tree.XML_ELEMENT_NODE and depth + 1 > self.max_depth:
                self.depth_error(child.line if child.line < 65535 else None)
            child = child.next
        return 0
