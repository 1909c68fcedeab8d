# cython: language_level=3, boundscheck=False, wraparound=False
"""Per-value output work in C: YAML block style (render.YamlRenderer) and the CSV shape and
rows (tabular.py). The rules are those of the Python text beside each function's caller;
strings that are not ASCII take the Python functions themselves, so both paths agree.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)


cdef class _Buffer:
    """Bytes being written, grown as needed."""
    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, Py_ssize_t more) except -1:
        cdef Py_ssize_t need = self.size + more
        cdef char* grown
        if need > self.capacity:
            grown = <char*>realloc(self.data, need * 2 + 256)
            if grown is NULL:
                raise MemoryError()
            self.data = grown
            self.capacity = need * 2 + 256
        return 0

    cdef inline int add(self, const char* text, Py_ssize_t size) except -1:
        self.reserve(size)
        memcpy(self.data + self.size, text, size)
        self.size += size
        return 0

    cdef inline int add_str(self, str text) except -1:
        cdef Py_ssize_t size
        cdef const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size)
        return self.add(utf8, size)

    cdef inline int indent(self, Py_ssize_t spaces) except -1:
        self.reserve(spaces)
        memset(self.data + self.size, 32, spaces)
        self.size += spaces
        return 0

    cdef bytes take(self):
        cdef bytes result = PyBytes_FromStringAndSize(self.data, self.size)
        self.size = 0
        return result


# ----------------------------------------------------------------------------------- YAML

cdef inline bint _wordish(unsigned char c) noexcept:
    return (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or (c >= 48 and c <= 57) \
        or c == 95 or c == 46 or c == 45 or c == 47


cdef bint _plain_ascii(const unsigned char* s, Py_ssize_t n) noexcept:
    """render._PLAIN for an ASCII string: words of [\\w.-/] joined by single spaces, colons
    only inside a word, the first character a letter or '_', and no boolean or null word."""
    cdef Py_ssize_t i
    cdef unsigned char c, previous
    cdef unsigned char first = s[0] if n else 0
    if n == 0 or not ((first >= 97 and first <= 122) or (first >= 65 and first <= 90)
                      or first == 95):
        return False
    previous = 32
    for i in range(n):
        c = s[i]
        if c == 32:
            if previous == 32 or previous == 58:
                return False
        elif c == 58:
            if not _wordish(previous):
                return False
        elif not _wordish(c):
            return False
        previous = c
    if previous == 32 or previous == 58:
        return False
    if n <= 5:
        word = (<bytes>s[:n]).lower()
        if word in (b"y", b"n", b"yes", b"no", b"true", b"false", b"on", b"off", b"null"):
            return False
    return True


cdef const char* _HEX = "0123456789abcdef"


cdef int _quoted_ascii(_Buffer out, const unsigned char* s, Py_ssize_t n) except -1:
    """A JSON string (orjson's escapes), which is a YAML double-quoted scalar; DEL escaped
    as YAML wants it."""
    cdef Py_ssize_t i
    cdef unsigned char c
    cdef char escape[6]
    out.reserve(n + 2)
    out.add("\"", 1)
    for i in range(n):
        c = s[i]
        if c == 34:
            out.add("\\\"", 2)
        elif c == 92:
            out.add("\\\\", 2)
        elif c >= 32 and c != 127:
            out.add(<const char*>&s[i], 1)
        elif c == 10:
            out.add("\\n", 2)
        elif c == 13:
            out.add("\\r", 2)
        elif c == 9:
            out.add("\\t", 2)
        elif c == 8:
            out.add("\\b", 2)
        elif c == 12:
            out.add("\\f", 2)
        else:
            escape[0] = 92
            escape[1] = 117
            escape[2] = 48
            escape[3] = 48
            escape[4] = _HEX[c >> 4]
            escape[5] = _HEX[c & 15]
            out.add(escape, 6)
    out.add("\"", 1)
    return 0


cdef class YamlWriter:
    """render.YamlRenderer's items and entries, written into one buffer."""
    cdef _Buffer out
    cdef dict keys
    cdef dict others  # strings that are not ASCII -> their YAML (they repeat, as keys do)
    cdef object yaml_string  # render.yaml_string: strings that are not ASCII
    cdef object yaml_scalar  # render.yaml_scalar: numbers, booleans, None

    def __init__(self, yaml_string, yaml_scalar):
        self.out = _Buffer()
        self.keys = {}
        self.others = {}
        self.yaml_string = yaml_string
        self.yaml_scalar = yaml_scalar

    cdef int _string(self, str value) except -1:
        cdef Py_ssize_t size
        cdef const unsigned char* utf8
        if PyUnicode_IS_ASCII(value):
            utf8 = <const unsigned char*>PyUnicode_AsUTF8AndSize(value, &size)
            if _plain_ascii(utf8, size):
                self.out.add(<const char*>utf8, size)
            else:
                _quoted_ascii(self.out, utf8, size)
            return 0
        cdef PyObject* known = PyDict_GetItem(self.others, value)
        cdef bytes text
        if known is not NULL:
            text = <bytes>known
        else:
            text = self.yaml_string(value).encode()
            if len(self.others) < 10000 and len(value) < 64:
                self.others[value] = text
        return self.out.add(text, len(text))

    cdef int _key(self, str key) except -1:
        cdef PyObject* known = PyDict_GetItem(self.keys, key)
        cdef bytes text
        cdef Py_ssize_t start
        if known is NULL:
            start = self.out.size
            self._string(key)
            text = PyBytes_FromStringAndSize(self.out.data + start, self.out.size - start)
            if len(self.keys) < 10000:
                self.keys[key] = text
            return 0
        text = <bytes>known
        return self.out.add(text, len(text))

    cdef int _scalar(self, object value) except -1:
        if type(value) is str:
            return self._string(<str>value)
        if value is None:
            return self.out.add("null", 4)
        return self.out.add_str(self.yaml_scalar(value))

    cdef int _item(self, object value, Py_ssize_t level) except -1:
        if type(value) is dict and value:
            self._entries(<dict>value, level + 1, True)
        else:
            self.out.indent(2 * level)
            self.out.add("- ", 2)
            self._scalar(value)
            self.out.add("\n", 1)
        return 0

    cdef int _entries(self, dict mapping, Py_ssize_t level, bint dash) except -1:
        """Entries at `level`; with `dash`, the first line begins a list item instead."""
        cdef object value
        for key, value in mapping.items():
            if dash:
                self.out.indent(2 * level - 2)
                self.out.add("- ", 2)
                dash = False
            else:
                self.out.indent(2 * level)
            self._key(key)
            kind = type(value)
            if kind is str:
                self.out.add(": ", 2)
                self._string(<str>value)
                self.out.add("\n", 1)
            elif kind is dict:
                self.out.add(":\n", 2)
                self._entries(<dict>value, level + 1, False)
            elif kind is list:
                self.out.add(":\n", 2)
                for item in <list>value:
                    self._item(item, level)
            else:
                self.out.add(": ", 2)
                self._scalar(value)
                self.out.add("\n", 1)
        return 0

    def items(self, list values, Py_ssize_t level):
        for value in values:
            self._item(value, level)
        return self.out.take()

    def item(self, value, Py_ssize_t level):
        self._item(value, level)
        return self.out.take()

    def entries(self, dict mapping, Py_ssize_t level):
        self._entries(mapping, level, False)
        return self.out.take()

    def key(self, str key):
        self._key(key)
        return self.out.take()


# ------------------------------------------------------------------------------------ CSV

cdef class Shape:
    """What a path looked like across all records (see tabular.py)."""
    cdef public dict children
    cdef public bint is_list
    cdef public Py_ssize_t max_items
    cdef public object text_position  # children seen before the first text, or None

    def __init__(self):
        self.children = {}
        self.is_list = False
        self.max_items = 1
        self.text_position = None



cdef class _PathNode:
    """One path inside a record as it was met, a list item's number included (None for a
    child met once, which becomes item 0 if the child repeats in some record)."""
    cdef Py_ssize_t id
    cdef tuple steps  # ((key, number or None), ...)
    cdef Shape shape
    cdef dict singles  # key -> _PathNode
    cdef dict items  # (key, number) -> _PathNode


cdef int _varint(_Buffer out, size_t value) except -1:
    cdef unsigned char byte
    out.reserve(10)
    while value >= 0x80:
        out.data[out.size] = <char>((value & 0x7f) | 0x80)
        out.size += 1
        value >>= 7
    out.data[out.size] = <char>value
    out.size += 1
    return 0


cdef inline size_t _read_varint(const unsigned char** cursor) noexcept:
    cdef size_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while True:
        byte = cursor[0][0]
        cursor[0] += 1
        value |= <size_t>(byte & 0x7f) << shift
        if byte < 0x80:
            return value
        shift += 7


cdef int _put_cell(_Buffer out, Py_ssize_t node, object value) except -1:
    """One cell as [node id + 1, size, UTF-8 bytes] (0 ends a record)."""
    cdef Py_ssize_t size
    cdef const char* utf8
    _varint(out, node + 1)
    if value is None:
        return _varint(out, 0)
    if value is True:
        _varint(out, 4)
        return out.add("true", 4)
    if value is False:
        _varint(out, 5)
        return out.add("false", 5)
    if type(value) is not str:
        value = str(value)
    utf8 = PyUnicode_AsUTF8AndSize(value, &size)
    _varint(out, size)
    return out.add(utf8, size)


cdef class Rows:
    """Records as rows without a second look at the records: each record is walked once,
    learning the shape (which children repeat, where text comes) and giving its cells as
    bytes, [path id, size, UTF-8]... per record. Once every record is seen, column_positions
    tells the column of each path id, and csv_rows writes the rows from those bytes."""
    cdef public Shape shape
    cdef list nodes  # by id
    cdef _PathNode root
    cdef _Buffer out

    def __init__(self):
        self.shape = Shape()
        self.nodes = []
        self.root = self._node((), self.shape)
        self.out = _Buffer()

    cdef _PathNode _node(self, tuple steps, Shape shape):
        cdef _PathNode node = _PathNode()
        node.id = len(self.nodes)
        node.steps = steps
        node.shape = shape
        node.singles = {}
        node.items = {}
        self.nodes.append(node)
        return node

    @property
    def paths(self):
        """How many paths inside records have been met (one id each)."""
        return len(self.nodes)

    def cells(self, list records):
        """The records' cells, as bytes for csv_rows."""
        for record in records:
            if record is not None:  # an empty record is a row of empty cells, not a column
                self._walk(self.root, record)
            _varint(self.out, 0)
        return self.out.take()

    cdef int _walk(self, _PathNode node, object value) except -1:
        cdef Shape shape = node.shape
        cdef Shape child
        cdef _PathNode below
        cdef Py_ssize_t number
        cdef PyObject* found
        if type(value) is not dict:
            if shape.text_position is None:
                shape.text_position = len(shape.children)
            return _put_cell(self.out, node.id, value)
        for key, item in (<dict>value).items():
            found = PyDict_GetItem(shape.children, key)
            if found is NULL:
                child = Shape()
                shape.children[key] = child
            else:
                child = <Shape>found
            if type(item) is list:
                child.is_list = True
                if len(<list>item) > child.max_items:
                    child.max_items = len(<list>item)
                for number in range(len(<list>item)):
                    step = (key, number)
                    found = PyDict_GetItem(node.items, step)
                    if found is NULL:
                        below = self._node(node.steps + (step,), child)
                        node.items[step] = below
                    else:
                        below = <_PathNode>found
                    self._walk(below, (<list>item)[number])
            else:
                found = PyDict_GetItem(node.singles, key)
                if found is NULL:
                    below = self._node(node.steps + ((key, None),), child)
                    node.singles[key] = below
                else:
                    below = <_PathNode>found
                self._walk(below, item)
        return 0

    @property
    def steps(self):
        """Each path's steps from the record, ((key, item number or None), ...), by id."""
        cdef _PathNode node
        result = []
        for node in self.nodes:
            result.append(node.steps)
        return result


def column_positions(Shape shape, list steps, list columns, str text_key):
    """The column of each path (-1: none), from its steps, once the shape is final: a child
    met once is item 0 of a key that repeats somewhere; a value beside children is their
    text key's."""
    cdef Shape below
    index = {}
    for number, column in enumerate(columns):
        index.setdefault(column, number)
    result = []
    for path_steps in steps:
        path = []
        below = shape
        for key, number in path_steps:
            below = <Shape>below.children[key]
            if number is not None:
                path += [key, str(number)]
            elif below.is_list:
                path += [key, "0"]
            else:
                path.append(key)
        column = tuple(path)
        if below.children or not column:
            column = column + (text_key,)
        result.append(index.get(column, -1))
    return result


cdef int _field(_Buffer out, const char* text, Py_ssize_t size) except -1:
    """One RFC 4180 field, quoted as Python's csv module quotes (QUOTE_MINIMAL): when it holds
    a comma, a quote, CR or LF."""
    cdef Py_ssize_t i
    cdef bint quote = False
    for i in range(size):
        if text[i] == 44 or text[i] == 34 or text[i] == 10 or text[i] == 13:
            quote = True
            break
    if not quote:
        return out.add(text, size)
    out.add("\"", 1)
    for i in range(size):
        if text[i] == 34:
            out.add("\"\"", 2)
        else:
            out.add(&text[i], 1)
    out.add("\"", 1)
    return 0


def csv_rows(bytes cells, list positions, Py_ssize_t width):
    """CSV lines (CRLF) from Rows.cells' bytes; `positions`: the column of each path id."""
    cdef _Buffer out = _Buffer()
    cdef const unsigned char* cursor = <const unsigned char*>(<const char*>cells)
    cdef const unsigned char* end = cursor + len(cells)
    cdef Py_ssize_t count = len(positions)
    cdef Py_ssize_t* column = <Py_ssize_t*>malloc((count + 1) * sizeof(Py_ssize_t))
    cdef const char** texts = <const char**>malloc((width + 1) * sizeof(char*))
    cdef Py_ssize_t* sizes = <Py_ssize_t*>malloc((width + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t i, position
    cdef size_t node, size
    try:
        if column is NULL or texts is NULL or sizes is NULL:
            raise MemoryError()
        for i in range(count):
            column[i] = positions[i]
        while cursor < end:
            for i in range(width):
                sizes[i] = 0
                texts[i] = ""
            while True:
                node = _read_varint(&cursor)
                if node == 0:
                    break
                size = _read_varint(&cursor)
                position = column[node - 1]
                if position >= 0:  # a later cell for one column replaces an earlier one
                    texts[position] = <const char*>cursor
                    sizes[position] = size
                cursor += size
            if width == 1 and sizes[0] == 0:
                out.add("\"\"", 2)  # a lone empty field is quoted, or the line would be empty
            else:
                for i in range(width):
                    if i:
                        out.add(",", 1)
                    _field(out, texts[i], sizes[i])
            out.add("\r\n", 2)
        return out.take()
    finally:
        free(column)
        free(texts)
        free(sizes)


def csv_header(list names):
    """The header line: column names as fields."""
    cdef _Buffer out = _Buffer()
    cdef Py_ssize_t size
    cdef const char* utf8
    for number, name in enumerate(names):
        if number:
            out.add(",", 1)
        utf8 = PyUnicode_AsUTF8AndSize(name, &size)
        _field(out, utf8, size)
    if len(names) == 1 and not names[0]:
        out.add("\"\"", 2)
    out.add("\r\n", 2)
    return out.take()


# ---------------------------------------------------------------------------------- JSONL

def json_lines(bytes array):
    """JSON Lines from a compact JSON array (`[a,b]` -> `a\\nb\\n`): the commas between its
    items become newlines. One serialization per chunk instead of one per record."""
    cdef Py_ssize_t size = len(array)
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t last
    cdef int depth = 0
    cdef char c
    cdef char* text
    cdef bytes result
    if size <= 2:
        return b""
    # "[a,b]" -> "a,b]" -> "a\nb\n"; a new bytes object, not yet shared, written in place
    result = PyBytes_FromStringAndSize(<const char*>array + 1, size - 1)
    text = result
    last = size - 2
    while i < last:
        c = text[i]
        if c == 34:  # a string: to its closing quote, over escaped characters
            i += 1
            while text[i] != 34:
                i += 2 if text[i] == 92 else 1
        elif c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
        elif c == 44 and depth == 0:
            text[i] = 10
        i += 1
    text[last] = 10
    return result
