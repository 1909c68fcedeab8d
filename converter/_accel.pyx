# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The converter's engine, in C: libxml2's push parser calls back into this module for every
start tag, end tag and run of text, and the values, records and text come out of here in
bulk, once per chunk fed. No tree is built and Python is not called per element.

libxml2 runs in its SAX1 mode: names arrive as written (`x:tier`), attributes and `xmlns`
declarations in document order, and no namespace rule is checked -- as expat reads a
document for xmltodict's default mode. The modes that need namespaces (strip, expand)
resolve them here and refuse a document that breaks the rules (NAMESPACE_ERROR).

The libxml2 used is the one lxml ships (its functions are looked up in lxml's module when
this one is imported): errors and positions are those of the libxml2 the project has
always reported, and no build dependency is added -- only lxml's headers, as before.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.exc cimport PyErr_Fetch, PyErr_NormalizeException
from cpython.list cimport PyList_Append, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset, strcmp, strdup, strlen, strncmp

import json
import os
import re
import tempfile

import orjson

from converter._emit import YamlWriter
from converter.render import yaml_scalar, yaml_string

include "_jsonout.pxi"
include "_csvout.pxi"
include "_reindent.pxi"


cdef extern from "libxml/parser.h":
    ctypedef unsigned char xmlChar
    ctypedef struct xmlParserInput:
        int line
        int col
        const xmlChar* base
        const xmlChar* cur
        const xmlChar* end
        unsigned long consumed
    ctypedef struct xmlDict
    ctypedef struct xmlParserCtxt:
        void* _private
        int wellFormed
        xmlParserInput* input
        int instate
        xmlDict* dict
    ctypedef xmlParserCtxt* xmlParserCtxtPtr
    ctypedef struct xmlEnumeration
    ctypedef struct xmlError:
        int domain
        int code
        char* message
        int level
        char* file
        int line
        char* str1
        char* str2
        char* str3
        int int1
        int int2
    ctypedef void (*startElementSAXFunc)(void* ctx, const xmlChar* name, const xmlChar** atts)
    ctypedef void (*endElementSAXFunc)(void* ctx, const xmlChar* name)
    ctypedef void (*charactersSAXFunc)(void* ctx, const xmlChar* ch, int len)
    ctypedef void (*referenceSAXFunc)(void* ctx, const xmlChar* name)
    ctypedef void (*entityDeclSAXFunc)(void* ctx, const xmlChar* name, int type,
                                       const xmlChar* publicId, const xmlChar* systemId,
                                       xmlChar* content)
    ctypedef void (*unparsedEntityDeclSAXFunc)(void* ctx, const xmlChar* name,
                                               const xmlChar* publicId, const xmlChar* systemId,
                                               const xmlChar* notationName)
    ctypedef void (*attributeDeclSAXFunc)(void* ctx, const xmlChar* elem,
                                          const xmlChar* fullname, int type, int def_,
                                          const xmlChar* defaultValue, xmlEnumeration* tree)
    ctypedef void (*xmlStructuredErrorFunc)(void* userData, const xmlError* error)
    ctypedef struct xmlSAXHandler:
        entityDeclSAXFunc entityDecl
        attributeDeclSAXFunc attributeDecl
        unparsedEntityDeclSAXFunc unparsedEntityDecl
        startElementSAXFunc startElement
        endElementSAXFunc endElement
        referenceSAXFunc reference
        charactersSAXFunc characters
        charactersSAXFunc ignorableWhitespace
        charactersSAXFunc cdataBlock
        unsigned int initialized
        xmlStructuredErrorFunc serror
    unsigned int XML_SAX2_MAGIC
    int XML_PARSE_NONET
    int XML_PARSE_HUGE
    int XML_PARSE_NOENT
    int XML_PARSER_START_TAG
    int XML_ERR_TAG_NAME_MISMATCH


cdef extern from "Python.h":
    int PyException_SetTraceback(object exception, object traceback) except -1


cdef extern from "<dlfcn.h>" nogil:
    void* dlopen(const char* filename, int flags)
    void* dlsym(void* handle, const char* symbol)
    int RTLD_LAZY
    int RTLD_NOLOAD


# libxml2's functions, found in the libxml2 that lxml loaded (module init, below). Python
# loads lxml's extension privately and binds ours at once, so they cannot be linked by name.
ctypedef xmlParserCtxtPtr (*_create_t)(xmlSAXHandler*, void*, const char*, int, const char*)
ctypedef int (*_use_options_t)(xmlParserCtxtPtr, int)
ctypedef int (*_parse_chunk_t)(xmlParserCtxtPtr, const char*, int, int)
ctypedef void (*_ctxt_t)(xmlParserCtxtPtr)
ctypedef void (*_free_enumeration_t)(xmlEnumeration*)
ctypedef int (*_position_t)(void*)
ctypedef size_t (*_dict_size_t)(xmlDict*) noexcept

cdef _create_t xmlCreatePushParserCtxt
cdef _use_options_t xmlCtxtUseOptions
cdef _parse_chunk_t xmlParseChunk
cdef _ctxt_t xmlStopParser
cdef _ctxt_t xmlFreeParserCtxt
cdef _free_enumeration_t xmlFreeEnumeration
cdef _position_t xmlSAX2GetLineNumber
cdef _position_t xmlSAX2GetColumnNumber
cdef _dict_size_t xmlDictSize


cdef void* _symbol(void* library, const char* name) except NULL:
    cdef void* found = dlsym(library, name)
    if found is NULL:
        raise ImportError(f"libxml2 as lxml loaded it has no {name.decode()}")
    return found


cdef int _bind_libxml2() except -1:
    global xmlCreatePushParserCtxt, xmlCtxtUseOptions, xmlParseChunk, xmlStopParser
    global xmlFreeParserCtxt, xmlFreeEnumeration, xmlSAX2GetLineNumber, xmlSAX2GetColumnNumber
    global xmlDictSize
    from lxml import etree
    path = etree.__file__.encode()
    cdef void* library = dlopen(path, RTLD_LAZY | RTLD_NOLOAD)  # already loaded: no new copy
    if library is NULL:
        raise ImportError(f"cannot find libxml2 in {etree.__file__}")
    xmlCreatePushParserCtxt = <_create_t>_symbol(library, b"xmlCreatePushParserCtxt")
    xmlCtxtUseOptions = <_use_options_t>_symbol(library, b"xmlCtxtUseOptions")
    xmlParseChunk = <_parse_chunk_t>_symbol(library, b"xmlParseChunk")
    xmlStopParser = <_ctxt_t>_symbol(library, b"xmlStopParser")
    xmlFreeParserCtxt = <_ctxt_t>_symbol(library, b"xmlFreeParserCtxt")
    xmlFreeEnumeration = <_free_enumeration_t>_symbol(library, b"xmlFreeEnumeration")
    xmlSAX2GetLineNumber = <_position_t>_symbol(library, b"xmlSAX2GetLineNumber")
    xmlSAX2GetColumnNumber = <_position_t>_symbol(library, b"xmlSAX2GetColumnNumber")
    xmlDictSize = <_dict_size_t>_symbol(library, b"xmlDictSize")
    return 0


_bind_libxml2()


# What the engine does with the document (set per conversion).
DEF DOCUMENT = 0   # json, yaml: values of complete children, frames for open elements
DEF RECORDS = 1    # jsonl, csv: the record elements only
DEF COUNT = 2      # picking a record path: sibling counts, no values
DEF TEXT = 3       # text: the text nodes themselves, written as they end

# What one open element is.
DEF BUILD = 0      # its value is being built (a dict, or text)
DEF FRAME = 1      # streamed: its complete children leave as "add" events
DEF PATH = 2       # an ancestor of the record elements (records mode)
DEF SKIP = 3       # outside the records: nothing kept

DEF KEEP = 0
DEF STRIP = 1
DEF EXPAND = 2

DEF CACHE_BITS = 12
# libxml2 is given the input this many bytes at a time; between two steps a start tag that it
# is still waiting to see whole is measured (Engine._check_pending_tag).
DEF STEP = 16384
DEF CACHE_SIZE = 4096  # 2 ** CACHE_BITS

cdef str XML_NS = "http://www.w3.org/XML/1998/namespace"
cdef str XMLNS_NS = "http://www.w3.org/2000/xmlns/"


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    # Python's str.strip() set within ASCII (XML allows only the first four in text).
    return c == 32 or c == 10 or c == 9 or c == 13 or c == 11 or c == 12 or (28 <= c <= 31)


cdef inline bint _space2(const unsigned char* s) noexcept nogil:
    return s[0] == 0xC2 and (s[1] == 0x85 or s[1] == 0xA0)


cdef inline bint _space3(const unsigned char* s) noexcept nogil:
    if s[0] == 0xE2:
        return (s[1] == 0x80 and (s[2] <= 0x8A or s[2] == 0xA8 or s[2] == 0xA9 or s[2] == 0xAF)
                ) or (s[1] == 0x81 and s[2] == 0x9F)
    return (s[0] == 0xE1 and s[1] == 0x9A and s[2] == 0x80) or (
        s[0] == 0xE3 and s[1] == 0x80 and s[2] == 0x80)


cdef inline bint _unicode_space_around(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether UTF-8 `s` (n bytes) begins or ends with whitespace beyond ASCII, as
    str.strip() sees it: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
    U+205F, U+3000 (two and three bytes long)."""
    if s[0] < 0x80 and s[n - 1] < 0x80:
        return False
    return (n >= 2 and (_space2(s) or _space2(s + n - 2))) or (
        n >= 3 and (_space3(s) or _space3(s + n - 3)))


@cython.final
cdef class _Path:
    """Count mode: one element path, with the most siblings it had under one parent."""
    cdef tuple path
    cdef dict children  # key -> _Path
    cdef Py_ssize_t most
    cdef Py_ssize_t parent_generation  # the parent element `siblings` counts in
    cdef Py_ssize_t siblings

    def __cinit__(self, tuple path):
        self.path = path
        self.children = {}


@cython.final
cdef class _Level:
    """One open element; the object for each depth is reused from element to element."""
    cdef str key
    cdef str local  # expand mode: its local name, which a record path may name
    cdef object d  # BUILD: a dict of entries so far, or None
    cdef int kind
    cdef int line  # where its start tag began (SAX1 keeps no start line: error messages)
    cdef bint has_child
    cdef Py_ssize_t attributes  # how many of d's first entries are attributes
    cdef char* text
    cdef Py_ssize_t text_len
    cdef Py_ssize_t text_cap
    cdef _Path counted  # count mode: its element path
    cdef Py_ssize_t generation  # count mode: which element at this depth it is
    cdef list ns_saved  # strip/expand: (prefix, previous binding) to restore at the end
    # json, jsonl: the element's value written as JSON bytes (_jsonout.pxi)
    cdef _Group** groups  # its map's keys so far, in first-seen order (reused)
    cdef int ngroups
    cdef int gcap
    cdef int last  # the group met last (repeats are usually adjacent)
    cdef dict gindex  # key bytes -> group number, once there are many groups
    cdef _Spool* sink  # where its value goes
    cdef bint opened  # "{" written: the value is a map
    cdef int elevel  # the nesting level of its map's entries (YAML's indent)
    cdef bint lead  # YAML: its first line still begins with its list-item prefix
    cdef bint top  # the root, or a record
    cdef _Group* group  # the group in its parent's map where it waits, or NULL
    cdef Py_ssize_t entries  # entries already written into the sink
    cdef bytes jkey
    cdef _CNode* cnode  # csv: where it is in its record (_csvout.pxi)

    def __dealloc__(self):
        free(self.text)
        _free_groups(self.groups, self.gcap)

    cdef inline int add_text(self, const char* data, Py_ssize_t size,
                             Py_ssize_t limit) except -1:
        """1 when the text would pass `limit` (nothing added), else 0."""
        cdef Py_ssize_t need = self.text_len + size
        cdef char* grown
        if need > self.text_cap:
            if need > limit:
                return 1
            grown = <char*>realloc(self.text, need * 2 + 64)
            if grown is NULL:
                raise MemoryError()
            self.text = grown
            self.text_cap = need * 2 + 64
        memcpy(self.text + self.text_len, data, size)
        self.text_len = need
        return 0


cdef struct _CacheEntry:
    const xmlChar* name
    char* text  # a copy of the name, checked on every hit
    PyObject* value
    PyObject* jkey  # the writers' key for it (_JsonOut.key), once asked for


@cython.final
cdef class _NameCache:
    """libxml2 interns names in its dictionary: a name's str is found by its pointer (checked
    against the text, in case a pointer is ever reused), not made again per element; nor
    its key's JSON bytes, which the writers use as the key's identity."""
    cdef _CacheEntry* table
    cdef str prefix
    cdef _JsonOut jw

    def __cinit__(self, str prefix):
        self.prefix = prefix
        self.table = <_CacheEntry*>malloc(CACHE_SIZE * sizeof(_CacheEntry))
        if self.table is NULL:
            raise MemoryError()
        memset(self.table, 0, CACHE_SIZE * sizeof(_CacheEntry))

    def __dealloc__(self):
        cdef int i
        if self.table is not NULL:
            for i in range(CACHE_SIZE):
                if self.table[i].value is not NULL:
                    Py_DECREF(<object>self.table[i].value)
                if self.table[i].jkey is not NULL:
                    Py_DECREF(<object>self.table[i].jkey)
                free(self.table[i].text)
            free(self.table)

    cdef inline _CacheEntry* _entry(self, const xmlChar* name) except NULL:
        # Fibonacci hashing: interned names sit a few bytes apart in libxml2's pool, so
        # the pointer's low bits must be mixed into the slot, not shifted away.
        cdef size_t slot = ((<size_t>name) * <size_t>0x9E3779B97F4A7C15ULL) >> (64 - CACHE_BITS)
        cdef _CacheEntry* entry = &self.table[slot]
        cdef str value
        cdef char* text
        if entry.name == name and entry.value is not NULL:
            if strcmp(<const char*>name, entry.text) == 0:
                return entry
        value = self.prefix + _str(name)
        text = strdup(<const char*>name)
        if text is NULL:
            raise MemoryError()
        if entry.value is not NULL:
            Py_DECREF(<object>entry.value)
        if entry.jkey is not NULL:
            Py_DECREF(<object>entry.jkey)
            entry.jkey = NULL
        free(entry.text)
        Py_INCREF(value)
        entry.text = text
        entry.name = name
        entry.value = <PyObject*>value
        return entry

    cdef str get(self, const xmlChar* name):
        return <str>self._entry(name).value

    cdef bytes jkey(self, const xmlChar* name):
        return self.entry_jkey(self._entry(name))

    cdef inline bytes entry_jkey(self, _CacheEntry* entry):
        """The key's JSON bytes of an entry _entry() just gave (no other lookup since)."""
        cdef bytes key
        if entry.jkey is NULL:
            key = self.jw.key(<str>entry.value)
            Py_INCREF(key)
            entry.jkey = <PyObject*>key
        return <bytes>entry.jkey


DEF SHORT = 16  # strings shorter than this are looked up in a _ShortStrings cache
DEF SHORT_BITS = 12


cdef struct _ShortEntry:
    Py_ssize_t size  # 0: empty slot
    char text[SHORT]
    PyObject* value


@cython.final
cdef class _ShortStrings:
    """Short values repeat (`t="pt"`, `<s>ok</s>`): one str for each recent one, found by its
    bytes, saves decoding and allocating a new one per element. Strs are immutable, so
    sharing them changes nothing."""
    cdef _ShortEntry* table

    def __cinit__(self):
        self.table = <_ShortEntry*>malloc((1 << SHORT_BITS) * sizeof(_ShortEntry))
        if self.table is NULL:
            raise MemoryError()
        memset(self.table, 0, (1 << SHORT_BITS) * sizeof(_ShortEntry))

    def __dealloc__(self):
        cdef int i
        if self.table is not NULL:
            for i in range(1 << SHORT_BITS):
                if self.table[i].value is not NULL:
                    Py_DECREF(<object>self.table[i].value)
            free(self.table)

    cdef str get(self, const char* data, Py_ssize_t size):
        cdef size_t hash = 14695981039346656037ULL  # FNV-1a
        cdef Py_ssize_t i
        cdef _ShortEntry* entry
        cdef str value
        if size == 0 or size >= SHORT:
            return PyUnicode_DecodeUTF8(data, size, NULL)
        for i in range(size):
            hash = (hash ^ <unsigned char>data[i]) * 1099511628211ULL
        entry = &self.table[(hash >> 20) & ((1 << SHORT_BITS) - 1)]
        if entry.size == size and memcmp(entry.text, data, size) == 0:
            return <str>entry.value
        value = PyUnicode_DecodeUTF8(data, size, NULL)
        if entry.value is not NULL:
            Py_DECREF(<object>entry.value)
        Py_INCREF(value)
        entry.value = <PyObject*>value
        entry.size = size
        memcpy(entry.text, data, size)
        return value


cdef inline str _str(const xmlChar* text):
    return PyUnicode_DecodeUTF8(<const char*>text, strlen(<const char*>text), NULL)


@cython.final
cdef class Engine:
    """One document through libxml2's push parser.

    `feed(chunk)` parses a chunk and returns what it completed: for the document mode a
    list of events (below), for records a list of record values, for csv the records'
    cells (_csvout.pxi), for counting nothing; json, jsonl, yaml and text write their bytes
    to set_output's writer instead. `close()` ends the document the same way.

    Document events, in order, for the writers of whole documents (document.py):
      ("open", key, entries, n)  an element that is still open becomes a frame, the child
                              of the innermost open frame; entries are its attributes and
                              complete children so far, as (key, value or list of values),
                              the attributes first (n of them, unless a child's key met one)
      ("add", key, values)    complete children of the innermost frame, all under `key`
      ("close", text)         the innermost frame ended; its text (None when there is none)
      ("document", key, value)  the root ended without ever becoming a frame
    """
    cdef xmlParserCtxt* ctxt
    cdef int mode
    cdef int ns_mode
    cdef str attr_prefix
    cdef str text_key
    cdef frozenset force
    cdef bint has_force
    cdef bint strip
    cdef object infer
    cdef int max_depth
    cdef int depth
    cdef list levels
    cdef _NameCache element_names
    cdef _NameCache attribute_names
    cdef _ShortStrings short_strings
    cdef object failure  # a Python exception raised in a callback, raised again by feed()
    cdef object first_error  # the first error libxml2 reported: (level, message, line, column)
    cdef bint root_seen
    cdef bint ended
    cdef dict defaults  # element name -> [(attribute, default value)] from the DTD
    cdef _CacheEntry* name_entry  # keep mode: the name cache's entry of the element starting
    # document mode
    cdef list events
    cdef str batch_key
    cdef list batch
    # records mode
    cdef list record_path
    cdef int record_depth
    cdef list records
    # count mode
    cdef list paths  # every _Path but the root's, in the order first seen
    cdef Py_ssize_t generation
    # text mode
    cdef bytes separator
    cdef bint text_attributes
    cdef char* piece
    cdef Py_ssize_t piece_len
    cdef Py_ssize_t piece_cap
    # namespaces
    cdef dict ns
    # json, jsonl: the JSON writer (_jsonout.pxi)
    cdef bint json  # json, jsonl or yaml: the engine writes the bytes
    cdef bint yaml
    cdef object yaml_writer  # _emit.YamlWriter: maps the Python side made (expand's @xmlns)
    cdef _Group* target_group
    cdef _JsonOut jw
    cdef bint sealed  # attributes are written at once: no child or text key can equal one
    cdef frozenset jforce  # force_list, as key bytes
    cdef bytes text_jkey
    cdef Py_ssize_t open_groups
    cdef bint root_list
    cdef Py_ssize_t written_records
    # csv: the CSV writer (_csvout.pxi)
    cdef bint csv
    cdef _CsvOut cw
    # limits (converter/limits.py)
    cdef Py_ssize_t max_attributes
    cdef Py_ssize_t max_defaults
    cdef Py_ssize_t max_default_bytes
    cdef Py_ssize_t default_count
    cdef Py_ssize_t default_bytes
    cdef size_t max_names
    cdef Py_ssize_t max_value_bytes
    # the start tag libxml2 is waiting to see whole: where it starts, how far it was read
    cdef unsigned long long tag_start
    cdef Py_ssize_t tag_scanned
    cdef Py_ssize_t tag_attributes
    cdef unsigned char tag_quote
    cdef int last_line  # the parser's line at the last event (_start_line)

    def __cinit__(self):
        self.ctxt = NULL
        self.piece = NULL

    def __init__(self, str mode, str namespaces="keep", str attr_prefix="@",
                 str text_key="#text", force_list=(), bint strip=True, infer=None,
                 int max_depth=1000, record_path=None, str separator="\n",
                 bint include_attributes=False, Py_ssize_t max_attributes=256,
                 Py_ssize_t max_attribute_defaults=256,
                 Py_ssize_t max_attribute_default_bytes=1024, Py_ssize_t max_names=10000,
                 Py_ssize_t max_value_bytes=16777216):
        cdef xmlSAXHandler sax
        self.mode = {"document": DOCUMENT, "records": RECORDS, "count": COUNT,
                     "text": TEXT, "json": DOCUMENT, "jsonl": RECORDS, "yaml": DOCUMENT,
                     "csv": RECORDS}[mode]
        self.json = mode in ("json", "jsonl", "yaml")
        self.csv = mode == "csv"
        self.yaml = mode == "yaml"
        self.yaml_writer = YamlWriter(yaml_string, yaml_scalar) if self.yaml else None
        self.jw = _JsonOut()
        self.jforce = frozenset(self.jw.key(name) for name in force_list)
        self.text_jkey = self.jw.key(text_key)
        self.cw = _CsvOut(self.jw, infer) if self.csv else None
        # As document.DocumentWriter.attributes_sealed: a child's key never starts with a
        # character no name can start with -- but with expand, keys begin with any URI.
        self.sealed = (bool(attr_prefix) and not re.match(r"[\w.\-:]", attr_prefix[0])
                       and namespaces != "expand" and not text_key.startswith(attr_prefix))
        self.ns_mode = {"keep": KEEP, "strip": STRIP, "expand": EXPAND}[namespaces]
        self.attr_prefix = attr_prefix
        self.text_key = text_key
        self.force = frozenset(force_list)
        self.has_force = len(self.force) > 0
        self.strip = strip
        self.infer = infer
        self.max_depth = max_depth
        self.depth = 0
        self.levels = [None]
        self.element_names = _NameCache("")
        self.attribute_names = _NameCache(attr_prefix)
        self.element_names.jw = self.jw
        self.attribute_names.jw = self.jw
        self.short_strings = _ShortStrings()
        self.events = []
        self.batch = []
        self.records = []
        self.paths = []
        self.record_path = list(record_path) if record_path else None
        self.record_depth = len(self.record_path) if record_path else 0
        self.separator = separator.encode()
        self.text_attributes = include_attributes
        self.defaults = {}
        self.ns = {"xml": XML_NS}
        self.max_attributes = max_attributes
        self.max_defaults = max_attribute_defaults
        self.max_default_bytes = max_attribute_default_bytes
        self.max_names = max_names
        self.max_value_bytes = max_value_bytes
        self.tag_start = <unsigned long long>-1

        memset(&sax, 0, sizeof(sax))
        sax.initialized = XML_SAX2_MAGIC  # for serror; no *Ns handlers: the SAX1 parser runs
        sax.startElement = _on_start
        sax.endElement = _on_end
        sax.characters = _on_characters
        sax.ignorableWhitespace = _on_characters
        sax.cdataBlock = _on_characters
        sax.reference = _on_reference
        sax.entityDecl = _on_entity_decl
        sax.unparsedEntityDecl = _on_unparsed_entity_decl
        sax.attributeDecl = _on_attribute_decl
        sax.serror = _on_error
        self.ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL)
        if self.ctxt is NULL:
            raise MemoryError()
        self.ctxt._private = <void*>self
        # No network and no DTD loading (no externalSubset handler: an external DTD is never
        # read). NOENT makes SAX1 hand over attribute values decoded (`&#38;` as `&`); the
        # only references left to substitute are character references and the five
        # predefined entities, since any entity declaration stops the parser
        # (refuse_entity). HUGE lifts libxml2's 256-level depth cap so that max_depth
        # applies, and its limits on text size.
        xmlCtxtUseOptions(self.ctxt, XML_PARSE_NONET | XML_PARSE_HUGE | XML_PARSE_NOENT)

    def __dealloc__(self):
        if self.ctxt is not NULL:
            self.ctxt._private = NULL
            xmlFreeParserCtxt(self.ctxt)
        free(self.piece)

    # -- driving -------------------------------------------------------------------------
    @property
    def root_seen(self):
        return self.root_seen

    @property
    def root_key(self):
        return (<_Level>self.levels[1]).key if len(self.levels) > 1 else None

    @property
    def records_written(self):
        """jsonl: how many records were written."""
        return self.written_records

    @property
    def bytes_copied(self):
        """json, jsonl, yaml: bytes moved from the spools into their parents' (tests: a
        nested subtree is handed up, not copied again at every level)."""
        return self.jw.copied

    def table(self, Py_ssize_t rows_per_chunk):
        """csv: what the records' cells were learned into (paths, steps, shape, records), as
        tabular reads _emit.Rows; feed() then returns the cells, at most `rows_per_chunk`
        records a chunk."""
        self.cw.per_chunk = rows_per_chunk
        return self.cw

    def set_output(self, write):
        """json, jsonl, yaml, text: where the bytes go (a binary stream's write), as they
        are made."""
        self.jw.write = write

    @property
    def error(self):
        """The first error libxml2 reported: (level, message, line, column), or None."""
        return self.first_error

    @property
    def most_repeated(self):
        """Count mode: element path -> most siblings with that key under one parent, in the
        order the paths were first seen."""
        cdef _Path path
        return {path.path: path.most for path in self.paths}

    def feed(self, bytes chunk, bint final=False):
        cdef const char* data = chunk
        cdef Py_ssize_t size = len(chunk)
        cdef int step
        if self.ended:
            raise RuntimeError("the document has ended")
        while True:
            self._check_pending_tag()
            step = <int>min(size, STEP)
            xmlParseChunk(self.ctxt, data, step, 1 if (final and step == size) else 0)
            data += step
            size -= step
            if size == 0 or self.failure is not None or not self.ctxt.wellFormed:
                break
        if final:
            self.ended = True
        return self._collect()

    cdef object _collect(self):
        cdef object result
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        if not self.ctxt.wellFormed:
            return _PARSE_FAILED
        if self.csv:
            return self.cw.take()
        if self.json:
            if self.ended and self.mode == DOCUMENT and self.root_seen and not self.yaml:
                # the root's end, written once the parser agrees the document is whole
                self.jw.put(&self.jw.out, "]}\n" if self.root_list else "}\n",
                            3 if self.root_list else 2)
            self.jw.flush()
            return None
        if self.mode == DOCUMENT:
            if not self.ended:
                self._promote()
            self._flush_batch()
            result, self.events = self.events, []
            return result
        if self.mode == RECORDS:
            result, self.records = self.records, []
            return result
        if self.mode == TEXT:
            self.jw.flush()
        return None

    cdef int _check_pending_tag(self) except -1:
        """libxml2 reads a start tag only once it has all of it, and then checks its
        attributes for duplicates in time that grows with their square (SAX1): a start tag it
        is still waiting for is measured here, between two steps, and refused once it holds
        more attributes than allowed or is larger than a value may be."""
        cdef xmlParserInput* input = self.ctxt.input
        cdef const unsigned char* p
        cdef const unsigned char* end
        cdef unsigned char c, quote
        cdef Py_ssize_t attributes
        cdef unsigned long long start
        if self.ctxt.instate != XML_PARSER_START_TAG or input is NULL or input.cur is NULL:
            return 0
        if input.end - input.cur < 1024:
            return 0
        start = input.consumed + <unsigned long long>(input.cur - input.base)
        if start != self.tag_start:
            self.tag_start = start
            self.tag_scanned = 0
            self.tag_attributes = 0
            self.tag_quote = 0
        p = <const unsigned char*>input.cur + self.tag_scanned
        end = <const unsigned char*>input.end
        quote = self.tag_quote
        attributes = self.tag_attributes
        while p < end:
            c = p[0]
            if quote:
                if c == quote:
                    quote = 0
            elif c == 34 or c == 39:
                quote = c
            elif c == 61:  # '=' outside a value: one attribute
                attributes += 1
            p += 1
        self.tag_scanned = input.end - input.cur
        self.tag_quote = quote
        self.tag_attributes = attributes
        if attributes > self.max_attributes:
            raise _Problem("TOO_MANY_ATTRIBUTES",
                           f"an element has more than {self.max_attributes} attributes",
                           input.line, input.col)
        if self.tag_scanned > self.max_value_bytes:
            raise _Problem("VALUE_TOO_LARGE",
                           f"a start tag is larger than the limit of {self.max_value_bytes} "
                           "bytes", input.line, input.col)
        return 0

    cdef int _fail(self, object error) except -1:
        if self.failure is None:
            self.failure = error
        xmlStopParser(self.ctxt)
        return 0

    cdef int _position(self, int* line, int* column) noexcept:
        line[0] = xmlSAX2GetLineNumber(<void*>self.ctxt)
        column[0] = xmlSAX2GetColumnNumber(<void*>self.ctxt)
        return 0

    cdef object _problem(self, str code, str message):
        cdef int line, column
        self._position(&line, &column)
        return _Problem(code, message, line, column)

    # -- start tags ----------------------------------------------------------------------
    cdef inline int _start_line(self) noexcept:
        """The line of the start tag being reported: libxml2 calls back with the whole tag
        in its buffer, just before its '>', so the line is the current one less the line
        breaks back to its '<' (none can be in a value: '<' is not allowed there). When the
        parser is still on the line of the last event, the tag has none: no need to look."""
        cdef xmlParserInput* input = self.ctxt.input
        cdef const xmlChar* p = input.cur
        cdef int line = input.line
        if line == self.last_line:
            return line
        self.last_line = line
        while p > input.base:
            p -= 1
            if p[0] == 60:  # '<'
                break
            if p[0] == 10:
                line -= 1
        return line

    cdef _Level _level(self, int depth):
        cdef _Level level
        if depth < PyList_GET_SIZE(self.levels):
            return <_Level>self.levels[depth]
        level = _Level()
        self.levels.append(level)
        return level

    cdef int start(self, const xmlChar* name, const xmlChar** atts) except -1:
        cdef int depth = self.depth + 1
        cdef _Level parent = <_Level>self.levels[depth - 1] if depth > 1 else None
        cdef _Level level
        cdef str key
        cdef int kind
        cdef list defaults = None
        cdef int line, column
        if depth > self.max_depth:
            self._position(&line, &column)
            raise _Problem("DEPTH_LIMIT_EXCEEDED",
                           f"elements are nested deeper than the limit of {self.max_depth} "
                           "levels", line, 0)
        if atts is not NULL:
            self._count_attributes(atts)
        if xmlDictSize(self.ctxt.dict) > self.max_names:
            raise self._problem("TOO_MANY_NAMES",
                                f"the document has more than {self.max_names} distinct "
                                "element and attribute names")
        self.depth = depth
        self.root_seen = True
        level = self._level(depth)
        level.line = self._start_line()
        level.has_child = False
        level.text_len = 0
        level.d = None
        level.attributes = 0
        level.ns_saved = None
        if self.defaults and name is not NULL:
            defaults = self.defaults.get(_str(name))

        if self.mode == TEXT:
            level.kind = SKIP
            if self.ns_mode != KEEP:  # checked, as every format checks it
                self._namespaced(level, name, atts, defaults, False)
            self._flush_piece()
            if self.text_attributes:
                self._text_attributes(atts, defaults)
            return 0

        if parent is not None:
            parent.has_child = True
        if self.mode == COUNT:
            level.kind = PATH
            key = (self.element_names.get(name) if self.ns_mode == KEEP
                   else self._namespaced(level, name, atts, defaults, False))
            level.key = key
            self._count(parent, level, key)
            return 0
        if parent is not None:
            if parent.kind == SKIP:
                level.kind = SKIP
                if self.ns_mode != KEEP:  # still checked: the document must be namespace-valid
                    self._namespaced(level, name, atts, defaults, False)
                return 0

        if self.ns_mode == KEEP:
            self.name_entry = self.element_names._entry(name)  # its JSON key: _json_start
            key = <str>self.name_entry.value
        else:
            key = self._namespaced(level, name, atts, defaults, True)
        level.key = key

        if self.mode == RECORDS:
            if parent is None or parent.kind == PATH:
                if not self._matches(level, self.record_path[depth - 1]):
                    level.kind = SKIP
                    return 0
                if depth < self.record_depth:
                    level.kind = PATH
                    return 0
        level.kind = BUILD
        if self.json:
            return self._json_start(level, parent, name, atts, defaults)
        if self.csv:
            return self._csv_start(level, parent, name, atts, defaults)
        if self.ns_mode == KEEP:
            self._keep_attributes(level, atts, defaults)
        return 0

    cdef int _count_attributes(self, const xmlChar** atts) except -1:
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t n = 0
        cdef size_t size
        while atts[i] is not NULL:
            n += 1
            if atts[i + 1] is not NULL:
                size = strlen(<const char*>atts[i + 1])
                if <Py_ssize_t>size > self.max_value_bytes:
                    raise self._problem("VALUE_TOO_LARGE",
                                        f"an attribute value is larger than the limit of "
                                        f"{self.max_value_bytes} bytes")
            i += 2
        if n > self.max_attributes:
            raise self._problem("TOO_MANY_ATTRIBUTES",
                                f"an element has more than {self.max_attributes} attributes")
        return 0

    cdef bint _matches(self, _Level level, str component):
        if level.key == component:
            return True
        return self.ns_mode == EXPAND and level.local == component

    cdef int _count(self, _Level parent, _Level level, str key) except -1:
        """The element's path; one more sibling under its parent (counted in C, since a
        parent's children are counted per path: one number per path and parent)."""
        cdef _Path path
        cdef PyObject* found
        self.generation += 1
        level.generation = self.generation
        if parent is None:
            level.counted = _Path((key,))
            return 0
        found = PyDict_GetItem(parent.counted.children, key)
        if found is NULL:
            path = _Path(parent.counted.path + (key,))
            parent.counted.children[key] = path
            self.paths.append(path)
        else:
            path = <_Path>found
        level.counted = path
        if path.parent_generation != parent.generation:
            path.parent_generation = parent.generation
            path.siblings = 0
        path.siblings += 1
        if path.siblings > path.most:
            path.most = path.siblings
        return 0

    cdef object _attribute_value(self, const xmlChar* value):
        cdef str text = (self.short_strings.get(<const char*>value, strlen(<const char*>value))
                         if value is not NULL else "")
        if self.infer is not None:
            return self.infer(text)
        return text

    cdef int _keep_attributes(self, _Level level, const xmlChar** atts,
                              list defaults) except -1:
        """Attributes and xmlns declarations as written, in document order (as expat)."""
        cdef dict d
        cdef Py_ssize_t i = 0
        if atts is NULL and defaults is None:
            return 0
        d = {}
        if atts is not NULL:
            while atts[i] is not NULL:
                d[self.attribute_names.get(atts[i])] = self._attribute_value(atts[i + 1])
                i += 2
        if defaults is not None:
            self._apply_defaults(d, atts, defaults, None)
        if d:
            level.d = d
            level.attributes = len(d)
        return 0

    cdef dict _taken_attributes(self, _Level level, const xmlChar** atts, list defaults):
        """A writer's element's attributes as values (with the namespace modes' keys and the DTD
        defaults), taken off the level: the writer serializes them at once."""
        if self.ns_mode == KEEP:
            self._keep_attributes(level, atts, defaults)
        d = level.d
        level.d = None
        level.attributes = 0
        return d

    cdef int _apply_defaults(self, dict d, const xmlChar** atts, list defaults,
                             object keys) except -1:
        """Attribute defaults from the internal DTD subset, after the given ones (expat's
        order); `keys` maps an attribute name to its key (namespace modes)."""
        cdef Py_ssize_t i
        given = set()
        i = 0
        if atts is not NULL:
            while atts[i] is not NULL:
                given.add(_str(atts[i]))
                i += 2
        for name, value in defaults:
            if name in given:
                continue
            if keys is None:
                d[self.attr_prefix + name] = self.infer(value) if self.infer else value
            else:
                key = keys(name)
                if key is not None:
                    d[key] = self.infer(value) if self.infer else value
        return 0

    cdef object _split(self, str qname, str what):
        """A qualified name's (prefix or None, local name); NAMESPACE_ERROR if it is not one."""
        cdef Py_ssize_t colon = qname.find(":")
        if colon < 0:
            return None, qname
        if colon == 0 or colon == len(qname) - 1 or qname.find(":", colon + 1) >= 0:
            raise self._problem("NAMESPACE_ERROR",
                                f"the {what} name '{qname}' is not a valid qualified name")
        return qname[:colon], qname[colon + 1:]

    cdef str _resolve(self, str prefix, str qname):
        uri = self.ns.get(prefix)
        if uri is None:
            raise self._problem("NAMESPACE_ERROR",
                                f"the namespace prefix '{prefix}' of '{qname}' is not declared")
        return uri

    cdef str _namespaced(self, _Level level, const xmlChar* name, const xmlChar** atts,
                         list defaults, bint build):
        """strip and expand: declarations in scope, then the element's key and (when `build`)
        its attribute entries, with namespaces resolved."""
        cdef Py_ssize_t i = 0
        cdef list attributes = []
        cdef dict declared = None
        cdef list saved = []
        ns = self.ns
        if atts is not NULL:
            while atts[i] is not NULL:
                qname = _str(atts[i])
                value = _str(atts[i + 1]) if atts[i + 1] is not NULL else ""
                if qname == "xmlns" or qname.startswith("xmlns:"):
                    prefix = qname[6:] if len(qname) > 5 else ""
                    self._check_declaration(qname, prefix, value)
                    saved.append((prefix, ns.get(prefix)))
                    if declared is None:
                        declared = {}
                    if value:
                        ns[prefix] = value
                        declared[prefix] = value
                    else:  # xmlns="": no default namespace here (expat reports None)
                        ns.pop(prefix, None)
                        declared[prefix] = None
                else:
                    attributes.append((qname, value))
                i += 2
        level.ns_saved = saved or None
        prefix, local = self._split(_str(name), "element")
        level.local = local
        if prefix is not None:
            uri = self._resolve(prefix, _str(name))
        else:
            uri = ns.get("")
        if self.ns_mode == EXPAND and uri is not None:
            key = uri + ":" + local
        else:
            key = local
        seen = set()
        d = {}
        for qname, value in attributes:
            attribute_key = self._attribute_key(qname, seen)
            d[attribute_key] = self.infer(value) if self.infer else value
        if defaults is not None:
            given = {qname for qname, _value in attributes}
            for qname, value in defaults:
                if qname in given or qname == "xmlns" or qname.startswith("xmlns:"):
                    continue
                d[self._attribute_key(qname, seen)] = self.infer(value) if self.infer else value
        if declared is not None and self.ns_mode == EXPAND:
            d[self.attr_prefix + "xmlns"] = declared
        if build and d:
            level.d = d
            level.attributes = len(d)
        return key

    cdef str _attribute_key(self, str qname, set seen):
        prefix, local = self._split(qname, "attribute")
        if prefix is None:
            expanded = local
            uri = None
        else:
            uri = self._resolve(prefix, qname)
            expanded = uri + ":" + local
        if (uri, local) in seen:
            raise self._problem("NAMESPACE_ERROR",
                                f"the attribute '{qname}' repeats an attribute's expanded name")
        seen.add((uri, local))
        return self.attr_prefix + (expanded if self.ns_mode == EXPAND else local)

    cdef int _check_declaration(self, str qname, str prefix, str value) except -1:
        if qname == "xmlns:" or ":" in prefix:
            raise self._problem("NAMESPACE_ERROR",
                                f"'{qname}' does not declare a valid namespace prefix")
        if prefix == "xmlns" or value == XMLNS_NS:
            raise self._problem("NAMESPACE_ERROR",
                                f"'{qname}' declares the reserved prefix or namespace of xmlns")
        cdef bint xml_prefix = prefix == "xml"
        cdef bint xml_namespace = value == XML_NS
        if xml_prefix != xml_namespace:
            raise self._problem("NAMESPACE_ERROR",
                                f"'{qname}' binds the xml prefix or namespace to another")
        if prefix and not value:
            raise self._problem("NAMESPACE_ERROR",
                                f"'{qname}' declares the prefix '{prefix}' with an empty name")
        return 0

    # -- text ----------------------------------------------------------------------------
    cdef int characters(self, const xmlChar* data, int size) except -1:
        cdef _Level level
        cdef Py_ssize_t i
        cdef int too_large = 0
        if self.depth == 0:
            return 0
        if self.mode == TEXT:
            self._add_piece(<const char*>data, size)
            return 0
        level = <_Level>self.levels[self.depth]
        # (no try/except here: entering one costs every text node a walk of the exception
        # stack, so add_text answers 1 when the text is too large)
        if level.kind == BUILD and not ((self.json or self.csv) and self.strip):
            too_large = level.add_text(<const char*>data, size, self.max_value_bytes)
        elif level.kind == FRAME or level.kind == BUILD:
            if self.strip and level.text_len == 0:
                # A frame's text is joined and stripped at its end: leading whitespace
                # (the newlines between a root's records) need not be kept.
                for i in range(size):
                    if not _is_space(data[i]):
                        too_large = level.add_text(<const char*>data + i, size - i,
                                                   self.max_value_bytes)
                        break
            else:
                too_large = level.add_text(<const char*>data, size, self.max_value_bytes)
        if too_large:
            raise self._problem("VALUE_TOO_LARGE",
                                f"an element's text is larger than the limit of "
                                f"{self.max_value_bytes} bytes")
        return 0

    cdef object _text_value(self, _Level level):
        """The element's text as xmltodict keeps it: joined, stripped, typed; or None."""
        cdef Py_ssize_t start = 0
        cdef Py_ssize_t end = level.text_len
        cdef const unsigned char* text = <const unsigned char*>level.text
        cdef str value
        if end == 0:
            return None
        if self.strip:
            while start < end and _is_space(text[start]):
                start += 1
            while end > start and _is_space(text[end - 1]):
                end -= 1
            if start == end:
                return None
            value = self.short_strings.get(level.text + start, end - start)
            if text[start] >= 0x80 or text[end - 1] >= 0x80:
                value = value.strip()  # Unicode whitespace (U+00A0, U+3000, ...)
                if not value:
                    return None
        else:
            value = PyUnicode_DecodeUTF8(level.text, end, NULL)
        if self.infer is not None:
            return self.infer(value)
        return value

    # -- end tags ------------------------------------------------------------------------
    cdef int end(self) except -1:
        cdef int depth = self.depth
        cdef _Level level = <_Level>self.levels[depth]
        cdef _Level parent
        cdef object value
        cdef int kind = level.kind
        self.depth = depth - 1
        if level.ns_saved is not None:
            self._restore_namespaces(level)
        if self.mode == TEXT:
            self._flush_piece()
            return 0
        if kind == BUILD and self.csv:
            return self._csv_end(level)
        if kind == BUILD and self.json:
            self._json_end(level)
            if self.mode == RECORDS and depth == self.record_depth:
                self.jw.put(&self.jw.out, "\n", 1)
                self.written_records += 1
            return 0
        if kind == BUILD:
            value = self._value(level)
            if self.mode == RECORDS and depth == self.record_depth:
                self.records.append(value)
            elif depth == 1:
                if self.has_force and level.key in self.force:
                    value = [value]
                self.events.append(("document", level.key, value))
            else:
                parent = <_Level>self.levels[depth - 1]
                if parent.kind == FRAME:
                    if self.batch_key is not level.key and self.batch_key != level.key:
                        self._flush_batch()
                        self.batch_key = level.key
                    self.batch.append(value)
                else:
                    self._add_child(parent, level.key, value)
        elif kind == FRAME:
            self._flush_batch()
            self.events.append(("close", self._text_value(level)))
        return 0

    cdef object _value(self, _Level level):
        cdef object text = self._text_value(level)
        cdef object d = level.d
        cdef object existing
        level.d = None
        if d is None:
            return text
        if text is not None:
            self._add_child(level, self.text_key, text, d)
        return d

    cdef int _add_child(self, _Level parent, str key, object value, object d=None) except -1:
        """xmltodict's grouping: a repeated key becomes a list at its first place."""
        cdef PyObject* existing
        if d is None:
            d = parent.d
            if d is None:
                d = parent.d = {}
        existing = PyDict_GetItem(d, key)
        if existing is NULL:
            if self.has_force and key in self.force:
                PyDict_SetItem(d, key, [value])
            else:
                PyDict_SetItem(d, key, value)
        elif type(<object>existing) is list:
            PyList_Append(<object>existing, value)
        else:
            PyDict_SetItem(d, key, [<object>existing, value])
        return 0

    cdef int _flush_batch(self) except -1:
        if PyList_GET_SIZE(self.batch):
            self.events.append(("add", self.batch_key, self.batch))
            self.batch = []
        self.batch_key = None
        return 0

    cdef int _promote(self) except -1:
        """Between chunks, open elements that hold elements become frames, top down, so that
        what is complete below them can leave memory."""
        cdef int depth
        cdef _Level level
        for depth in range(1, self.depth + 1):
            level = <_Level>self.levels[depth]
            if level.kind == FRAME:
                continue
            if level.kind != BUILD or not level.has_child:
                return 0
            self._flush_batch()
            entries = list(level.d.items()) if level.d is not None else []
            level.d = None
            level.kind = FRAME
            self.events.append(("open", level.key, entries, level.attributes))
            if self.strip and level.text_len:
                self._drop_leading_space(level)
        return 0

    cdef int _drop_leading_space(self, _Level level) except -1:
        cdef Py_ssize_t i = 0
        while i < level.text_len and _is_space(<unsigned char>level.text[i]):
            i += 1
        if i == level.text_len:
            level.text_len = 0
        return 0

    cdef int _restore_namespaces(self, _Level level) except -1:
        for prefix, previous in reversed(level.ns_saved):
            if previous is None:
                self.ns.pop(prefix, None)
            else:
                self.ns[prefix] = previous
        level.ns_saved = None
        return 0

    # -- json, jsonl, yaml: each element's value as bytes (_jsonout.pxi) -----------------
    #
    # JSON and YAML share the skeleton: an element's value goes into its sink; its map's
    # keys are groups in first-seen order; a group's items wait in its spool until the
    # element ends, unless the group is the first one and a list. YAML spells the items in
    # list form ("- " at the item's level) and a key seen once swaps that prefix for its own
    # header (render.YamlRenderer's rule).
    cdef int _json_start(self, _Level level, _Level parent, const xmlChar* name,
                         const xmlChar** atts, list defaults) except -1:
        """The element's place in its parent (or the output), then its attributes."""
        cdef _JsonOut jw = self.jw
        cdef bytes jkey = (self.element_names.entry_jkey(self.name_entry)
                           if self.ns_mode == KEEP else jw.key(level.key))
        cdef Py_ssize_t i = 0
        cdef const char* value
        cdef dict d
        level.jkey = jkey
        level.opened = False
        level.entries = 0
        level.last = -1
        level.group = NULL
        level.lead = True
        level.top = False
        if parent is None or parent.kind != BUILD:  # the root, or a record
            level.sink = &jw.out
            level.elevel = 1
            level.top = True
            level.lead = False
            if self.mode == DOCUMENT:
                self.root_list = jkey in self.jforce
                if self.yaml:
                    level.lead = self.root_list
                    if self.root_list:
                        jw.put_bytes(level.sink, jw.yaml_key(jkey))
                        jw.put(level.sink, ":\n", 2)
                else:
                    jw.put(level.sink, "{", 1)
                    jw.put_bytes(level.sink, jkey)
                    if self.root_list:
                        jw.put(level.sink, ":[", 2)
                    else:
                        jw.put(level.sink, ":", 1)
        else:
            self._json_open(parent)
            level.elevel = parent.elevel + 1
            level.sink = self._json_target(parent, jkey, True)
            level.group = self.target_group
        if self.ns_mode == KEEP and defaults is None:
            if atts is NULL or atts[0] is NULL:
                return 0
            self._json_open(level)
            while atts[i] is not NULL:
                value = <const char*>atts[i + 1]
                if value is NULL:
                    value = ""
                self._json_attribute(level, self.attribute_names.jkey(atts[i]), value,
                                     strlen(value))
                i += 2
            return 0
        d = self._taken_attributes(level, atts, defaults)
        if d:
            self._json_open(level)
            for key, item in d.items():
                self._json_attribute_value(level, jw.key(key), item)
        return 0

    cdef int _json_open(self, _Level level) except -1:
        """The element's value is a map (it has an attribute or a child)."""
        if level.opened:
            return 0
        level.opened = True
        if not self.yaml:
            return self.jw.put(level.sink, "{", 1)
        if level.group is not NULL and level.group.count == 1:
            level.group.is_map = True
        if level.top and not level.lead:  # the root, not a list: "root:" on its own line
            self.jw.put_bytes(level.sink, self.jw.yaml_key(level.jkey))
            self.jw.put(level.sink, ":\n", 2)
        return 0

    cdef int _y_line(self, _Level level) except -1:
        """YAML: the start of a line of the element's map: its indent, or on the first line
        the element's list-item prefix ("- ") in its place."""
        if level.lead:
            level.lead = False
            self.jw.indent(level.sink, 2 * level.elevel - 2)
            return self.jw.put(level.sink, "- ", 2)
        return self.jw.indent(level.sink, 2 * level.elevel)

    cdef int _entry_head(self, _Level level, bytes key) except -1:
        """A sealed attribute's key, written at once."""
        if self.yaml:
            self._y_line(level)
            self.jw.put_bytes(level.sink, self.jw.yaml_key(key))
            self.jw.put(level.sink, ": ", 2)
        else:
            if level.entries:
                self.jw.put(level.sink, ",", 1)
            self.jw.put_bytes(level.sink, key)
            self.jw.put(level.sink, ":", 1)
        level.entries += 1
        return 0

    cdef int _json_attribute(self, _Level level, bytes key, const char* data,
                             Py_ssize_t size) except -1:
        """An attribute as the parser gave it: written at once when sealed, else a group."""
        cdef _Spool* target
        if self.sealed:
            self._entry_head(level, key)
            target = level.sink
        else:
            target = self._json_target(level, key, False)
            if self.yaml:
                self.jw.indent(target, 2 * level.elevel)
                self.jw.put(target, "- ", 2)
        self._json_scalar(target, data, size)
        if self.yaml:
            self.jw.put(target, "\n", 1)
        return 0

    cdef int _json_attribute_value(self, _Level level, bytes key, object value) except -1:
        """An attribute the Python side made (namespace modes, DTD defaults)."""
        cdef _Spool* target
        if not self.yaml:
            if self.sealed:
                self._entry_head(level, key)
                target = level.sink
            else:
                target = self._json_target(level, key, False)
            return self.jw.value(target, value)
        if self.sealed:  # keep mode: a string or a typed value, never a map
            self._entry_head(level, key)
            self.jw.put_bytes(level.sink, yaml_scalar(value).encode())
            return self.jw.put(level.sink, "\n", 1)
        target = self._json_target(level, key, False)
        if type(value) is dict and self.target_group is not NULL \
                and self.target_group.count == 1:
            self.target_group.is_map = True
        return self.jw.put_bytes(target, self.yaml_writer.item(value, level.elevel))

    cdef _Spool* _json_target(self, _Level level, bytes key, bint may_force) except NULL:
        """Where the next item under `key` goes in the level's map, its separator written.
        The first group, once it is a list, is written straight into the level's sink.
        Its group, when the item waits in one, is left in target_group."""
        cdef _JsonOut jw = self.jw
        cdef _Group* group = self._json_group(level, key, may_force)
        cdef _Spool* target
        if not group.direct and group == level.groups[0] and (group.count or group.forced):
            if self.yaml:
                self._y_line(level)
                jw.put_bytes(level.sink, jw.yaml_key(key))
                jw.put(level.sink, ":\n", 2)
            else:
                if level.entries:
                    jw.put(level.sink, ",", 1)
                jw.put_bytes(level.sink, key)
                jw.put(level.sink, ":[", 2)
            jw.copy(&group.spool, level.sink)
            group.direct = True
            level.entries += 1
        if group.direct:
            target = level.sink
            self.target_group = NULL
        else:
            target = &group.spool
            self.target_group = group
        if group.count and not self.yaml:
            jw.put(target, ",", 1)
        group.count += 1
        return target

    cdef _Group* _json_group(self, _Level level, bytes key, bint may_force) except NULL:
        cdef PyObject* wanted = <PyObject*>key
        cdef int i
        cdef int capacity
        cdef _Group** grown
        cdef _Group* group
        if level.last >= 0 and level.groups[level.last].key == wanted:
            return level.groups[level.last]
        if level.gindex is None:
            for i in range(level.ngroups):
                if level.groups[i].key == wanted:
                    level.last = i
                    return level.groups[i]
        else:
            found = level.gindex.get(key)
            if found is not None:
                level.last = found
                return level.groups[level.last]
        self.open_groups += 1
        if <size_t>self.open_groups > self.max_names:
            raise self._problem("TOO_MANY_NAMES",
                                f"the open elements have more than {self.max_names} distinct "
                                "child names between them")
        if level.ngroups == level.gcap:
            capacity = level.gcap * 2 if level.gcap else 4
            grown = <_Group**>realloc(level.groups, capacity * sizeof(_Group*))
            if grown is NULL:
                raise MemoryError()
            memset(grown + level.gcap, 0, (capacity - level.gcap) * sizeof(_Group*))
            level.groups = grown
            level.gcap = capacity
        group = level.groups[level.ngroups]
        if group is NULL:
            group = <_Group*>malloc(sizeof(_Group))
            if group is NULL:
                raise MemoryError()
            memset(group, 0, sizeof(_Group))
            level.groups[level.ngroups] = group
        group.key = wanted
        group.count = 0
        group.direct = False
        group.is_map = False
        group.forced = may_force and self.has_force and key in self.jforce
        level.last = level.ngroups
        level.ngroups += 1
        if level.gindex is not None:
            level.gindex[key] = level.last
        elif level.ngroups > 8:
            level.gindex = {<bytes>level.groups[i].key: i for i in range(level.ngroups)}
        return group

    cdef bytes _text_span(self, _Level level, Py_ssize_t* start, Py_ssize_t* end):
        """The element's text as xmltodict keeps it (joined, stripped): level.text from
        `start` to `end` (equal: none), or the bytes returned when Unicode whitespace was
        stripped too."""
        cdef const unsigned char* text = <const unsigned char*>level.text
        start[0] = 0
        end[0] = level.text_len
        if end[0] == 0 or not self.strip:
            return None
        while start[0] < end[0] and _is_space(text[start[0]]):
            start[0] += 1
        while end[0] > start[0] and _is_space(text[end[0] - 1]):
            end[0] -= 1
        if start[0] < end[0] and _unicode_space_around(text + start[0], end[0] - start[0]):
            value = PyUnicode_DecodeUTF8(level.text + start[0], end[0] - start[0], NULL).strip()
            if not value:  # Unicode whitespace (U+00A0, U+3000, ...)
                end[0] = start[0]
                return None
            return value.encode()
        return None

    cdef int _json_text(self, _Level level, bint grouped) except -1:
        """The element's text as xmltodict keeps it (joined, stripped, typed), written as
        its value (or under the text key when `grouped`); 0 when there is none."""
        cdef Py_ssize_t start, end
        cdef bytes encoded = self._text_span(level, &start, &end)
        cdef _Spool* target
        if start == end:
            return 0
        if grouped:
            target = self._json_target(level, self.text_jkey, True)
            if self.yaml:
                self.jw.indent(target, 2 * level.elevel)
                self.jw.put(target, "- ", 2)
        else:
            target = level.sink
        if encoded is not None:
            self._json_scalar(target, encoded, len(encoded))
        else:
            self._json_scalar(target, level.text + start, end - start)
        if grouped and self.yaml:
            self.jw.put(target, "\n", 1)
        return 1

    cdef int _json_scalar(self, _Spool* target, const char* data, Py_ssize_t size) except -1:
        """A text or attribute value: a string, or with types=infer what values.infer makes
        of it (the common numbers here, the rest by values.infer itself)."""
        cdef int kind
        if self.infer is not None:
            kind = _number_kind(data, size)
        else:
            kind = 0
        if kind == 0:
            if self.yaml:
                return self.jw.yaml_string_into(target, data, size)
            return self.jw._string_into(target, data, size)
        if kind == 3:
            return self.jw.put(target, "true", 4)
        if kind == 4:
            return self.jw.put(target, "false", 5)
        if kind == 1 and size - (data[0] == 45) <= 18:  # an integer within 64 bits
            if size == 2 and data[0] == 45 and data[1] == 48:  # "-0" is 0
                return self.jw.put(target, "0", 1)
            return self.jw.put(target, data, size)
        value = self.infer(PyUnicode_DecodeUTF8(data, size, NULL))
        if self.yaml:
            return self.jw.put_bytes(target, yaml_scalar(value).encode())
        return self.jw.value(target, value)

    cdef int _json_end(self, _Level level) except -1:
        """The element's value is complete: its text, then every group, in order."""
        cdef _JsonOut jw = self.jw
        cdef _Spool* sink = level.sink
        cdef _Group* group
        cdef Py_ssize_t skip = 2 * level.elevel + 2  # an item's "- " prefix, in YAML
        cdef int i
        if not level.opened:
            if self.yaml:
                if level.lead:
                    jw.indent(sink, 2 * level.elevel - 2)
                    jw.put(sink, "- ", 2)
                elif level.top:
                    jw.put_bytes(sink, jw.yaml_key(level.jkey))
                    jw.put(sink, ": ", 2)
            if not self._json_text(level, False):
                jw.put(sink, "null", 4)
            if self.yaml:
                jw.put(sink, "\n", 1)
            return 0
        self._json_text(level, True)
        for i in range(level.ngroups):
            group = level.groups[i]
            if self.yaml:
                if not group.direct:
                    self._y_line(level)
                    jw.put_bytes(sink, jw.yaml_key(<bytes>group.key))
                    if group.count > 1 or group.forced:
                        jw.put(sink, ":\n", 2)
                        jw.copy(&group.spool, sink)
                    elif group.is_map:
                        jw.put(sink, ":\n", 2)
                        jw.indent(sink, skip)
                        jw.copy(&group.spool, sink, skip)
                    else:
                        jw.put(sink, ": ", 2)
                        jw.copy(&group.spool, sink, skip)
            elif group.direct:
                jw.put(sink, "]", 1)
            else:
                if level.entries:
                    jw.put(sink, ",", 1)
                jw.put_bytes(sink, <bytes>group.key)
                if group.count > 1 or group.forced:
                    jw.put(sink, ":[", 2)
                    jw.copy(&group.spool, sink)
                    jw.put(sink, "]", 1)
                else:
                    jw.put(sink, ":", 1)
                    jw.copy(&group.spool, sink)
            level.entries += 1
            jw.reset(&group.spool)
            group.key = NULL
            group.count = 0
            group.direct = False
            group.is_map = False
        self.open_groups -= level.ngroups
        level.ngroups = 0
        level.last = -1
        level.gindex = None
        level.opened = False
        if not self.yaml:
            jw.put(sink, "}", 1)
        return 0

    # -- csv: each record's cells (_csvout.pxi) ----------------------------------------------
    #
    # An element's node is taken when it starts (its key counted among its parent's groups,
    # as JSON counts them); its attributes are cells at once, its text one at its end.
    cdef int _csv_start(self, _Level level, _Level parent, const xmlChar* name,
                        const xmlChar** atts, list defaults) except -1:
        cdef _CsvOut cw = self.cw
        cdef Py_ssize_t i = 0
        cdef const char* value
        cdef dict d
        cdef _CNode* node
        cdef bytes akey
        level.opened = False
        level.last = -1
        level.top = parent is None or parent.kind != BUILD  # a record
        if level.top:
            level.cnode = cw.root
        else:
            level.cnode = self._csv_item(
                parent, self.element_names.entry_jkey(self.name_entry)
                if self.ns_mode == KEEP else self.jw.key(level.key), True)
        if self.ns_mode == KEEP and defaults is None:
            if atts is NULL:
                return 0
            while atts[i] is not NULL:
                value = <const char*>atts[i + 1]
                if value is NULL:
                    value = ""
                if self.sealed:  # no child or text can share its key: an item of its own
                    level.opened = True
                    akey = self.attribute_names.jkey(atts[i])  # kept by the name cache
                    node = cw.child(level.cnode, <PyObject*>akey, 1, False)
                else:
                    node = self._csv_item(level, self.attribute_names.jkey(atts[i]), False)
                cw.scalar(node, value, strlen(value))
                i += 2
            return 0
        d = self._taken_attributes(level, atts, defaults)
        if d:
            for key, item in d.items():
                cw.value(self._csv_item(level, self.jw.key(key), False), item)
        return 0

    cdef _CNode* _csv_item(self, _Level level, bytes key, bint may_force) except NULL:
        """The node of the next item under `key` in the element's map."""
        cdef _Group* group = self._json_group(level, key, may_force)
        group.count += 1
        level.opened = True
        return self.cw.child(level.cnode, <PyObject*>key, group.count, group.forced)

    cdef int _csv_end(self, _Level level) except -1:
        """The element's text: its value, or an item under the text key beside the others."""
        cdef _CsvOut cw = self.cw
        cdef Py_ssize_t start, end
        cdef bytes encoded = self._text_span(level, &start, &end)
        cdef _Group* group
        cdef int i
        cdef _CNode* node = level.cnode
        if level.opened:
            if start != end:
                node = self._csv_item(level, self.text_jkey, True)
            for i in range(level.ngroups):
                group = level.groups[i]
                group.key = NULL
                group.count = 0
            self.open_groups -= level.ngroups
            level.ngroups = 0
            level.last = -1
            level.gindex = None
        if start != end:
            if encoded is not None:
                cw.scalar(node, encoded, len(encoded))
            else:
                cw.scalar(node, level.text + start, end - start)
        elif not level.opened and not level.top:
            cw.empty(node)  # None; a record that is None is a row of empty cells
        if level.top:
            cw.end_record()
        return 0

    # -- text mode -----------------------------------------------------------------------
    cdef int _add_piece(self, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = self.piece_len + size
        cdef char* grown
        if need > self.piece_cap:
            if need > self.max_value_bytes:
                raise self._problem("VALUE_TOO_LARGE",
                                    f"a text node is larger than the limit of "
                                    f"{self.max_value_bytes} bytes")
            grown = <char*>realloc(self.piece, need * 2 + 64)
            if grown is NULL:
                raise MemoryError()
            self.piece = grown
            self.piece_cap = need * 2 + 64
        memcpy(self.piece + self.piece_len, data, size)
        self.piece_len = need
        return 0

    cdef int _emit(self, const char* data, Py_ssize_t size) except -1:
        """One text node (or attribute value), stripped as str.strip() strips, if not empty."""
        cdef Py_ssize_t start = 0
        cdef Py_ssize_t end = size
        cdef const unsigned char* text = <const unsigned char*>data
        while start < end and _is_space(text[start]):
            start += 1
        while end > start and _is_space(text[end - 1]):
            end -= 1
        if start == end:
            return 0
        if _unicode_space_around(text + start, end - start):
            value = PyUnicode_DecodeUTF8(data + start, end - start, NULL).strip()
            if value:
                self.jw.put_bytes(&self.jw.out, value.encode())
                self.jw.put_bytes(&self.jw.out, self.separator)
            return 0
        self.jw.put(&self.jw.out, data + start, end - start)
        return self.jw.put_bytes(&self.jw.out, self.separator)

    cdef int _flush_piece(self) except -1:
        if self.piece_len:
            self._emit(self.piece, self.piece_len)
            self.piece_len = 0
        return 0

    cdef int _text_attributes(self, const xmlChar** atts, list defaults) except -1:
        cdef Py_ssize_t i = 0
        cdef const char* name
        given = set() if defaults is not None else None
        if atts is not NULL:
            while atts[i] is not NULL:
                name = <const char*>atts[i]
                if given is not None:
                    given.add(_str(atts[i]))
                # xmlns declarations are not attributes
                if not (strcmp(name, "xmlns") == 0 or strncmp(name, "xmlns:", 6) == 0):
                    if atts[i + 1] is not NULL:
                        self._emit(<const char*>atts[i + 1], strlen(<const char*>atts[i + 1]))
                i += 2
        if defaults is not None:
            for attribute, value in defaults:
                if attribute not in given and not (
                        attribute == "xmlns" or attribute.startswith("xmlns:")):
                    encoded = value.encode()
                    self._emit(encoded, len(encoded))
        return 0

    # -- the DTD -------------------------------------------------------------------------
    cdef int refuse_entity(self, const xmlChar* name, bint external) except -1:
        what = "external entity" if external else "entity"
        raise _Problem("XML_SECURITY_VIOLATION",
                       f"the document declares the {what} '{_str(name)}'; entity declarations "
                       "are refused for security", 1, 0)

    cdef int attribute_default(self, const xmlChar* element, const xmlChar* name,
                               const xmlChar* value) except -1:
        if value is NULL:
            return 0
        self.default_count += 1
        self.default_bytes += strlen(<const char*>value)
        if (self.default_count > self.max_defaults
                or self.default_bytes > self.max_default_bytes):
            raise self._problem(
                "ATTRIBUTE_DEFAULTS_LIMIT",
                f"the document declares more attribute defaults than the limit of "
                f"{self.max_defaults} defaults and {self.max_default_bytes} bytes of values "
                "(each is copied into every element it applies to)")
        defaults = self.defaults.setdefault(_str(element), [])
        attribute = _str(name)
        for known, _value in defaults:
            if known == attribute:
                return 0  # the first declaration binds
        defaults.append((attribute, _str(value)))
        return 0

    cdef int on_error(self, const xmlError* error) except -1:
        if self.first_error is None and error.level >= 2 and error.line > 0:
            if error.code == XML_ERR_TAG_NAME_MISMATCH and error.str1 and error.str2:
                message = self._mismatch(error.str1, error.str2)
            else:
                message = error.message.decode("utf-8", "replace") if error.message else ""
            self.first_error = (error.level, message.rstrip("\n"), error.line, error.int2)
        return 0

    cdef str _mismatch(self, const char* opened, const char* closing):
        """libxml2's SAX1 parser says "Opening and ending tag mismatch: a line 0 and b": it
        keeps no start lines, so the line is the engine's, of the element left open."""
        cdef str start = opened.decode("utf-8", "replace")
        cdef str end = closing.decode("utf-8", "replace")
        if self.depth < 1 or self.depth >= PyList_GET_SIZE(self.levels):
            return f"Opening and ending tag mismatch: <{start}> closed by </{end}>"
        return (f"Opening and ending tag mismatch: <{start}> opened on line "
                f"{(<_Level>self.levels[self.depth]).line} closed by </{end}>")


cdef int _number_kind(const char* s, Py_ssize_t n) noexcept:
    """What values.infer makes of a text: 0 a string, 1 an integer, 2 a decimal, 3 true,
    4 false (its pattern: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)."""
    cdef Py_ssize_t i = 0
    cdef bint plain = True
    if n == 4 and memcmp(s, "true", 4) == 0:
        return 3
    if n == 5 and memcmp(s, "false", 5) == 0:
        return 4
    if i < n and s[i] == 45:
        i += 1
    if i >= n:
        return 0
    if s[i] == 48:
        i += 1
    elif 49 <= s[i] <= 57:
        while i < n and 48 <= s[i] <= 57:
            i += 1
    else:
        return 0
    if i < n and s[i] == 46:
        i += 1
        plain = False
        if i >= n or not (48 <= s[i] <= 57):
            return 0
        while i < n and 48 <= s[i] <= 57:
            i += 1
    if i < n and (s[i] == 101 or s[i] == 69):
        i += 1
        plain = False
        if i < n and (s[i] == 43 or s[i] == 45):
            i += 1
        if i >= n or not (48 <= s[i] <= 57):
            return 0
        while i < n and 48 <= s[i] <= 57:
            i += 1
    if i != n:
        return 0
    return 1 if plain else 2


class _Problem(Exception):
    """An error the engine found itself: (code, message, line, column); 0 = unknown."""


_PARSE_FAILED = object()
PARSE_FAILED = _PARSE_FAILED  # feed() returned this: libxml2 found the document malformed


# -- the C callbacks: each reaches its Engine through the parser context -------------------

cdef inline Engine _engine(void* ctx):
    cdef void* private = (<xmlParserCtxt*>ctx)._private
    return <Engine>private if private is not NULL else None


# The three callbacks met per element call the engine through pointers that say nothing of
# exceptions, and look for one only when the engine answered -1: a try block would walk the
# exception stack on every call (a few percent of a conversion).
ctypedef int (*_start_call)(Engine, const xmlChar*, const xmlChar**) noexcept
ctypedef int (*_end_call)(Engine) noexcept
ctypedef int (*_characters_call)(Engine, const xmlChar*, int) noexcept


cdef int _start(Engine engine, const xmlChar* name, const xmlChar** atts) except -1:
    return engine.start(name, atts)


cdef int _end(Engine engine) except -1:
    return engine.end()


cdef int _characters(Engine engine, const xmlChar* data, int size) except -1:
    return engine.characters(data, size)


cdef _start_call _call_start = <_start_call>_start
cdef _end_call _call_end = <_end_call>_end
cdef _characters_call _call_characters = <_characters_call>_characters


cdef void _caught(Engine engine) noexcept:
    """The exception the engine raised (the interpreter's current one) stops the parse."""
    cdef PyObject* kind
    cdef PyObject* value
    cdef PyObject* traceback
    PyErr_Fetch(&kind, &value, &traceback)
    PyErr_NormalizeException(&kind, &value, &traceback)
    if traceback is not NULL:
        PyException_SetTraceback(<object>value, <object>traceback)
    error = <object>value
    Py_XDECREF(kind)
    Py_XDECREF(value)
    Py_XDECREF(traceback)
    engine._fail(error)


cdef void _on_start(void* ctx, const xmlChar* name, const xmlChar** atts) noexcept:
    cdef Engine engine = _engine(ctx)
    if engine is None or engine.failure is not None:
        return
    if _call_start(engine, name, atts) < 0:
        _caught(engine)


cdef void _on_end(void* ctx, const xmlChar* name) noexcept:
    cdef Engine engine = _engine(ctx)
    if engine is None or engine.failure is not None:
        return
    engine.last_line = (<xmlParserCtxt*>ctx).input.line
    if _call_end(engine) < 0:
        _caught(engine)


cdef void _on_characters(void* ctx, const xmlChar* data, int size) noexcept:
    cdef Engine engine = _engine(ctx)
    if engine is None or engine.failure is not None:
        return
    engine.last_line = (<xmlParserCtxt*>ctx).input.line
    if _call_characters(engine, data, size) < 0:
        _caught(engine)


cdef void _on_reference(void* ctx, const xmlChar* name) noexcept:
    # A reference to an entity no one declared (a document with an external DTD, which is
    # never read): dropped, as xmltodict drops it; in text it ends a text node, as in a tree.
    cdef Engine engine = _engine(ctx)
    if engine is None or engine.failure is not None:
        return
    if engine.mode == TEXT:
        try:
            engine._flush_piece()
        except BaseException as error:
            engine._fail(error)


cdef void _on_entity_decl(void* ctx, const xmlChar* name, int type, const xmlChar* public_id,
                          const xmlChar* system_id, xmlChar* content) noexcept:
    cdef Engine engine = _engine(ctx)
    if engine is None or engine.failure is not None:
        return
    try:
        engine.refuse_entity(name, system_id is not NULL)
    except BaseException as error:
        engine._fail(error)


cdef void _on_unparsed_entity_decl(void* ctx, const xmlChar* name, const xmlChar* public_id,
                                   const xmlChar* system_id,
                                   const xmlChar* notation) noexcept:
    _on_entity_decl(ctx, name, 0, public_id, system_id, NULL)


cdef void _on_attribute_decl(void* ctx, const xmlChar* element, const xmlChar* name, int type,
                             int def_, const xmlChar* value, xmlEnumeration* tree) noexcept:
    cdef Engine engine = _engine(ctx)
    if tree is not NULL:
        xmlFreeEnumeration(tree)  # the handler owns it
    if engine is None or engine.failure is not None:
        return
    try:
        engine.attribute_default(element, name, value)
    except BaseException as error:
        engine._fail(error)


cdef void _on_error(void* ctx, const xmlError* error) noexcept:
    cdef Engine engine = _engine(ctx)
    if engine is None or error is NULL:
        return
    try:
        engine.on_error(error)
    except BaseException as failure:
        engine._fail(failure)
