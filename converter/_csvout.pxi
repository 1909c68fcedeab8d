# Included by _accel.pyx: the CSV writer (csv mode) -- each record's cells and the shape its
# columns are learned from, made from the parse events, with no Python value per element.
#
# tabular.py's reference builds each record's value and walks it (_emit.Rows); here the walk
# happens as the elements arrive. Every element, attribute and text inside a record is met at
# a *node*: its path from the record, each step a key and an item number (the first item of a
# key is number -1, Rows' None: it is item 0 once the key repeats in any record, column "k" or
# "k.0" by the final shape). Nodes of one path without numbers share a *shape*, and the shapes
# are _emit.Shape objects, updated only when they change (a new child, a first repeat, more
# items than ever, a first text), so that tabular.columns and width read them as they read
# Rows'. A node's value leaves as a cell, [node id + 1, size, UTF-8] in varints as Rows.cells
# writes them, 0 after each record: the same spool and second pass (_emit.csv_rows) follow.
#
# Xmltodict orders a value's keys as attributes, then children grouped by first-seen key, then
# the text: the order in which the events bring them, so the shapes learn their children in the
# reference's order. The nodes and shapes are bounded where tabular checks Rows' (paths per
# column, the column limit), after each piece of input.

from libc.string cimport memmove

from converter._emit import Shape


cdef struct _CShape:
    PyObject* py  # its _emit.Shape (a reference owned here)
    Py_ssize_t max_items
    bint is_list
    bint has_text  # text_position is set


cdef struct _CNode:
    Py_ssize_t id
    _CNode* parent
    PyObject* key  # canonical key bytes (_JsonOut.key, which keeps them); NULL: the record
    Py_ssize_t number  # -1: the key's first item
    _CShape* shape


cdef struct _Slot:
    void* parent  # a node (children by key and number) or a shape (number -2: by key)
    PyObject* key
    Py_ssize_t number
    void* child


cdef inline size_t _slot_hash(void* parent, PyObject* key, Py_ssize_t number) noexcept:
    cdef size_t h = (<size_t>parent) * <size_t>0x9E3779B97F4A7C15ULL
    h ^= (<size_t>key) * <size_t>0xC2B2AE3D27D4EB4FULL
    h ^= (<size_t>(number + 2)) * <size_t>0x165667B19E3779F9ULL
    return h ^ (h >> 31)


@cython.final
cdef class _CsvOut:
    """The nodes, shapes and cells of one document's records."""
    cdef _JsonOut jw  # its key() makes keys canonical: one object per key, compared by address
    cdef object infer
    cdef _CNode** nodes
    cdef Py_ssize_t nnodes
    cdef Py_ssize_t node_cap
    cdef _CShape** shapes
    cdef Py_ssize_t nshapes
    cdef Py_ssize_t shape_cap
    cdef _Slot* table
    cdef size_t mask
    cdef Py_ssize_t used
    cdef _CNode* root
    # the cells: whole records before record_end, the open record's after it
    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t cap
    cdef Py_ssize_t record_end
    cdef Py_ssize_t pending  # records before record_end
    cdef list chunks
    cdef public Py_ssize_t per_chunk  # records a chunk of cells holds at most
    cdef readonly Py_ssize_t records
    cdef readonly object shape  # the record's _emit.Shape

    def __cinit__(self, _JsonOut jw, object infer):
        self.jw = jw
        self.infer = infer
        self.chunks = []
        self.per_chunk = 256
        self.mask = 1023
        self.table = <_Slot*>malloc((self.mask + 1) * sizeof(_Slot))
        if self.table is NULL:
            raise MemoryError()
        memset(self.table, 0, (self.mask + 1) * sizeof(_Slot))
        self.root = self._node(NULL, NULL, -1, self._shape(Shape()))
        self.shape = <object>self.root.shape.py

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.nnodes):
            free(self.nodes[i])
        for i in range(self.nshapes):
            Py_DECREF(<object>self.shapes[i].py)
            free(self.shapes[i])
        free(self.nodes)
        free(self.shapes)
        free(self.table)
        free(self.data)

    # -- what tabular reads (as it reads _emit.Rows) --------------------------------------
    @property
    def paths(self):
        """How many paths inside records have been met (one node each)."""
        return self.nnodes

    @property
    def steps(self):
        """Each node's path from its record, ((key, item number or None), ...), by id."""
        cdef list result = [()]
        cdef _CNode* node
        cdef Py_ssize_t i
        names = self.jw.names
        for i in range(1, self.nnodes):
            node = self.nodes[i]
            result.append(result[node.parent.id] + (
                (names[<bytes>node.key], None if node.number < 0 else node.number),))
        return result

    cdef list take(self):
        """The cells of the records completed since the last call, in chunks."""
        cdef list chunks
        if self.pending:
            self._cut()
        chunks, self.chunks = self.chunks, []
        return chunks

    # -- nodes and shapes ----------------------------------------------------------------
    cdef _CShape* _shape(self, object py) except NULL:
        cdef _CShape* shape
        cdef _CShape** grown
        if self.nshapes == self.shape_cap:
            self.shape_cap = self.shape_cap * 2 if self.shape_cap else 64
            grown = <_CShape**>realloc(self.shapes, self.shape_cap * sizeof(_CShape*))
            if grown is NULL:
                raise MemoryError()
            self.shapes = grown
        shape = <_CShape*>malloc(sizeof(_CShape))
        if shape is NULL:
            raise MemoryError()
        memset(shape, 0, sizeof(_CShape))
        shape.max_items = 1
        Py_INCREF(py)
        shape.py = <PyObject*>py
        self.shapes[self.nshapes] = shape
        self.nshapes += 1
        return shape

    cdef _CNode* _node(self, _CNode* parent, PyObject* key, Py_ssize_t number,
                       _CShape* shape) except NULL:
        cdef _CNode* node
        cdef _CNode** grown
        if self.nnodes == self.node_cap:
            self.node_cap = self.node_cap * 2 if self.node_cap else 256
            grown = <_CNode**>realloc(self.nodes, self.node_cap * sizeof(_CNode*))
            if grown is NULL:
                raise MemoryError()
            self.nodes = grown
        node = <_CNode*>malloc(sizeof(_CNode))
        if node is NULL:
            raise MemoryError()
        node.id = self.nnodes
        node.parent = parent
        node.key = key
        node.number = number
        node.shape = shape
        self.nodes[self.nnodes] = node
        self.nnodes += 1
        return node

    cdef _Slot* _slot(self, void* parent, PyObject* key, Py_ssize_t number) noexcept:
        """The table's slot for (parent, key, number): its own, or the empty one it would take."""
        cdef size_t i = _slot_hash(parent, key, number) & self.mask
        cdef _Slot* slot
        while True:
            slot = &self.table[i]
            if slot.child is NULL or (slot.parent == parent and slot.key == key
                                      and slot.number == number):
                return slot
            i = (i + 1) & self.mask

    cdef int _put(self, void* parent, PyObject* key, Py_ssize_t number, void* child) except -1:
        cdef _Slot* old = self.table
        cdef size_t old_size = self.mask + 1
        cdef size_t i
        cdef _Slot* slot
        if 2 * (self.used + 1) > <Py_ssize_t>old_size:  # at most half full
            self.table = <_Slot*>malloc(2 * old_size * sizeof(_Slot))
            if self.table is NULL:
                self.table = old
                raise MemoryError()
            memset(self.table, 0, 2 * old_size * sizeof(_Slot))
            self.mask = 2 * old_size - 1
            for i in range(old_size):
                if old[i].child is not NULL:
                    self._slot(old[i].parent, old[i].key, old[i].number)[0] = old[i]
            free(old)
        slot = self._slot(parent, key, number)
        slot.parent = parent
        slot.key = key
        slot.number = number
        slot.child = child
        self.used += 1
        return 0

    cdef _CNode* child(self, _CNode* parent, PyObject* key, Py_ssize_t count,
                       bint forced) except NULL:
        """The node of the `count`th item under `key` in the element at `parent`; its shape
        told that the key is a list (a repeat, or forced) and how many items it had."""
        cdef Py_ssize_t number = -1 if count == 1 else count - 1
        cdef _Slot* slot = self._slot(parent, key, number)
        cdef _CNode* node = <_CNode*>slot.child
        cdef _CShape* shape
        cdef _Slot* known
        if node is NULL:
            known = self._slot(parent.shape, key, -2)
            shape = <_CShape*>known.child
            if shape is NULL:
                py = Shape()
                shape = self._shape(py)
                (<object>parent.shape.py).children[self.jw.names[<bytes>key]] = py
                self._put(parent.shape, key, -2, shape)
            node = self._node(parent, key, number, shape)
            self._put(parent, key, number, node)
        shape = node.shape
        if (count > 1 or forced) and not shape.is_list:
            shape.is_list = True
            (<object>shape.py).is_list = True
        if count > shape.max_items:
            shape.max_items = count
            (<object>shape.py).max_items = count
        return node

    # -- cells ---------------------------------------------------------------------------
    cdef inline int _reserve(self, Py_ssize_t more) except -1:
        cdef Py_ssize_t need = self.size + more
        cdef char* grown
        if need > self.cap:
            grown = <char*>realloc(self.data, need * 2 + 4096)
            if grown is NULL:
                raise MemoryError()
            self.data = grown
            self.cap = need * 2 + 4096
        return 0

    cdef inline int _varint(self, size_t value) noexcept:
        while value >= 0x80:
            self.data[self.size] = <char>((value & 0x7f) | 0x80)
            self.size += 1
            value >>= 7
        self.data[self.size] = <char>value
        self.size += 1
        return 0

    cdef int _cell(self, _CNode* node, const char* data, Py_ssize_t size) except -1:
        """A value that is not a map: the shape's text comes at its children so far, the
        first time; then the cell."""
        cdef _CShape* shape = node.shape
        if not shape.has_text:
            shape.has_text = True
            py = <object>shape.py
            py.text_position = len(py.children)
        self._reserve(size + 20)
        self._varint(node.id + 1)
        self._varint(size)
        memcpy(self.data + self.size, data, size)
        self.size += size
        return 0

    cdef int empty(self, _CNode* node) except -1:
        """An element with neither attributes, children nor text (None)."""
        return self._cell(node, "", 0)

    cdef int scalar(self, _CNode* node, const char* data, Py_ssize_t size) except -1:
        """A text or attribute value, as Rows writes what the records engine makes of it
        (values.infer's value as str(); booleans as true and false)."""
        cdef int kind = _number_kind(data, size) if self.infer is not None else 0
        cdef bytes text
        if kind == 0 or (kind == 1 and size - (data[0] == 45) <= 18):
            if kind == 1 and size == 2 and data[0] == 45 and data[1] == 48:  # "-0" is 0
                return self._cell(node, "0", 1)
            return self._cell(node, data, size)
        if kind == 3:
            return self._cell(node, "true", 4)
        if kind == 4:
            return self._cell(node, "false", 5)
        text = str(self.infer(PyUnicode_DecodeUTF8(data, size, NULL))).encode()
        return self._cell(node, text, len(text))

    cdef int value(self, _CNode* node, object value) except -1:
        """A value the Python side made (namespace modes, DTD defaults): a scalar, or a map
        of them (expand's @xmlns)."""
        cdef Py_ssize_t size
        cdef const char* utf8
        cdef bytes text
        if type(value) is dict:
            for key, item in (<dict>value).items():
                text = self.jw.key(key)  # kept by the writer's keys
                self.value(self.child(node, <PyObject*>text, 1, False), item)
            return 0
        if value is None:
            return self.empty(node)
        if type(value) is str:
            utf8 = PyUnicode_AsUTF8AndSize(value, &size)
            return self._cell(node, utf8, size)
        if value is True or value is False:
            return self._cell(node, "true" if value else "false", 4 if value else 5)
        text = str(value).encode()
        return self._cell(node, text, len(text))

    cdef int end_record(self) except -1:
        self._reserve(1)
        self._varint(0)
        self.record_end = self.size
        self.pending += 1
        self.records += 1
        if self.pending >= self.per_chunk:
            self._cut()
        return 0

    cdef int _cut(self) except -1:
        """The whole records so far become a chunk; the open record's cells move up."""
        self.chunks.append(PyBytes_FromStringAndSize(self.data, self.record_end))
        memmove(self.data, self.data + self.record_end, self.size - self.record_end)
        self.size -= self.record_end
        self.record_end = 0
        self.pending = 0
        return 0
