# Included by _accel.pyx: indented JSON, made on the fly from the compact JSON the engine writes.
#
# Re-indenting the token stream keeps the engine single-minded (compact JSON only, so a child
# written before a sibling turns it into a list item needs no second indentation) and needs no
# memory beyond a few bits of state: strings are copied through as they come, however long and
# wherever a write cuts them (an escape's backslash at the end of one write escapes the first
# byte of the next). What is made goes to the destination at the end of every write, and
# whenever REINDENT_FLUSH bytes are waiting: deep nesting makes lines of depth x indent spaces,
# so one write's output can be far larger than it. The output is json.dumps(value, indent=n)'s
# layout, to the byte.

DEF REINDENT_FLUSH = 1048576  # bytes made before they are handed to the destination


@cython.final
cdef class Reindenter:
    """A write-only binary stream: compact JSON in, indented JSON out to `dest`."""
    cdef object dest_write
    cdef Py_ssize_t unit  # spaces per level
    cdef Py_ssize_t depth
    cdef bint after_open  # an opening bracket was just written: its newline is pending
    cdef bint in_string
    cdef bint escaped  # in a string, after a backslash: the next byte is copied as it is
    cdef object out_bytes  # the bytes object whose buffer out is, or None
    cdef char* out
    cdef Py_ssize_t size
    cdef Py_ssize_t cap

    def __init__(self, dest, int indent):
        if indent < 1:
            raise ValueError(f"indent must be positive, not {indent}")
        self.dest_write = dest.write
        self.unit = indent

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()

    def write(self, const unsigned char[::1] data not None):
        cdef Py_ssize_t n = data.shape[0]
        if n:
            self._scan(&data[0], n)
            self._flush()
        return n

    def close(self):
        self._reserve(1)
        self.out[self.size] = 10
        self.size += 1
        self._flush()

    cdef int _scan(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t start
        cdef unsigned char c
        while i < n:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                    self._put(p + i, 1)
                    i += 1
                start = i
                while i < n and p[i] != 34 and p[i] != 92:
                    i += 1
                if i == n:
                    self._put(p + start, i - start)
                    break
                i += 1  # the quote or the backslash, copied with the run before it
                self._put(p + start, i - start)
                if p[i - 1] == 92:
                    self.escaped = True
                else:
                    self.in_string = False
                continue
            c = p[i]
            if c == 32 or c == 10 or c == 13 or c == 9:
                i += 1
                continue
            if self.after_open:
                self.after_open = False
                if c == 125 or c == 93:  # an empty {} or []
                    self.depth -= 1
                    self._put(p + i, 1)
                    i += 1
                    continue
                self._newline(0)
            if c == 123 or c == 91:  # { [
                self._put(p + i, 1)
                self.depth += 1
                self.after_open = True
                i += 1
            elif c == 125 or c == 93:  # } ]
                self.depth -= 1
                self._newline(c)
                i += 1
            elif c == 44:  # ,
                self._put(p + i, 1)
                self._newline(0)
                i += 1
            elif c == 58:  # :
                self._put(<const unsigned char*>b": ", 2)
                i += 1
            elif c == 34:
                self.in_string = True
                self._put(p + i, 1)
                i += 1
            else:  # a number, true, false or null: copied up to the byte that ends it
                start = i
                while i < n and not _ends_scalar(p[i]):
                    i += 1
                self._put(p + start, i - start)
        return 0

    cdef int _newline(self, unsigned char closing) except -1:
        """A newline, the current depth's indent and then `closing` (unless 0)."""
        cdef Py_ssize_t spaces = self.depth * self.unit if self.depth > 0 else 0
        self._reserve(spaces + 2)
        self.out[self.size] = 10
        memset(self.out + self.size + 1, 32, spaces)
        self.size += spaces + 1
        if closing:
            self.out[self.size] = closing
            self.size += 1
        return 0

    cdef inline int _put(self, const unsigned char* data, Py_ssize_t size) except -1:
        if self.size + size <= self.cap:
            memcpy(self.out + self.size, data, size)
            self.size += size
            return 0
        return self._put_long(data, size)

    cdef int _put_long(self, const unsigned char* data, Py_ssize_t size) except -1:
        """A run longer than the room left: as much as fits, flushed, then the rest."""
        cdef Py_ssize_t piece
        while True:
            if self.size >= REINDENT_FLUSH:
                self._flush()
            if self.size == self.cap:
                self._reserve(1)
            piece = min(size, self.cap - self.size)
            memcpy(self.out + self.size, data, piece)
            self.size += piece
            data += piece
            size -= piece
            if size == 0:
                return 0

    cdef int _reserve(self, Py_ssize_t need) except -1:
        """Room for `need` more bytes: the waiting bytes flushed once there are
        REINDENT_FLUSH of them, the buffer grown past that only for one longer line."""
        cdef Py_ssize_t cap
        cdef bytes grown
        if self.size + need <= self.cap:
            return 0
        if self.size >= REINDENT_FLUSH:
            self._flush()
            if need <= self.cap:
                return 0
        cap = max(REINDENT_FLUSH + 65536, self.size + need)
        grown = PyBytes_FromStringAndSize(NULL, cap)
        if self.size:
            memcpy(<char*>grown, self.out, self.size)
        self.out_bytes = grown
        self.out = grown
        self.cap = cap
        return 0

    cdef int _flush(self) except -1:
        """What was made, to the destination: the bytes object it was made in, cut to its
        size (no copy); the next byte made starts another."""
        cdef PyObject* raw
        cdef Py_ssize_t size = self.size
        cdef bytes data
        if size == 0:
            return 0
        raw = <PyObject*>self.out_bytes
        Py_INCREF(<object>raw)  # held by raw alone once out_bytes lets go
        self.out_bytes = None
        self.out = NULL
        self.size = 0
        self.cap = 0
        _PyBytes_Resize(&raw, size)  # (shrinks in place; on failure raw is freed)
        data = <bytes>raw
        Py_DECREF(data)
        self.dest_write(data)
        return 0


cdef inline bint _ends_scalar(unsigned char c) noexcept:
    # A number, true, false or null ends at a structural byte, a quote or white space.
    return (c == 44 or c == 58 or c == 125 or c == 93 or c == 123 or c == 91 or c == 34
            or c == 32 or c == 10 or c == 13 or c == 9)
