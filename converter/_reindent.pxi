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
        # The state and the output's write position are kept in locals while bytes are made
        # (the object's fields only before a call that flushes or grows the buffer, and at the
        # end): every token then costs a few compares and a copy.
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t start
        cdef Py_ssize_t run
        cdef unsigned char c
        cdef Py_ssize_t depth = self.depth
        cdef Py_ssize_t spaces = depth * self.unit if depth > 0 else 0  # the indent of a line
        cdef bint after_open = self.after_open
        cdef char* o = self.out + self.size  # the next byte made
        cdef char* limit = self.out + self.cap
        if self.in_string:
            i = self._string(p, 0, n)
            o = self.out + self.size
            limit = self.out + self.cap
        while i < n:
            c = p[i]
            if _STRUCTURE[c] == 0:  # a number, true, false or null: up to the byte that ends it
                if after_open:
                    after_open = False
                    if limit - o < spaces + 1:
                        self.size = o - self.out
                        self._reserve(spaces + 1)
                        o = self.out + self.size
                        limit = self.out + self.cap
                    o[0] = 10
                    memset(o + 1, 32, spaces)
                    o += spaces + 1
                start = i
                while i < n and _STRUCTURE[p[i]] == 0:
                    i += 1
                run = i - start
                if limit - o >= run:
                    memcpy(o, p + start, run)
                    o += run
                else:
                    self.size = o - self.out
                    self._put(p + start, run)
                    o = self.out + self.size
                    limit = self.out + self.cap
                continue
            i += 1
            if c == 32 or c == 10 or c == 13 or c == 9:
                continue
            if limit - o < spaces + 4:  # a newline, its indent and two bytes
                self.size = o - self.out
                self._reserve(spaces + 4)
                o = self.out + self.size
                limit = self.out + self.cap
            if after_open:
                after_open = False
                if c == 125 or c == 93:  # an empty {} or []
                    depth -= 1
                    spaces = depth * self.unit if depth > 0 else 0
                    o[0] = c
                    o += 1
                    continue
                o[0] = 10
                memset(o + 1, 32, spaces)
                o += spaces + 1
                if limit - o < spaces + 4:
                    self.size = o - self.out
                    self._reserve(spaces + 4)
                    o = self.out + self.size
                    limit = self.out + self.cap
            if c == 34:  # a string: copied through to its closing quote
                o[0] = 34
                o += 1
                start = i
                while i < n and _IN_STRING_STOP[p[i]] == 0:
                    i += 1
                if i < n and p[i] == 34 and limit - o > i - start:  # (most strings) at once
                    i += 1
                    memcpy(o, p + start, i - start)
                    o += i - start
                    continue
                self.size = o - self.out  # an escape, the end of the write or of the room
                self.in_string = True
                i = self._string(p, start, n)
                o = self.out + self.size
                limit = self.out + self.cap
            elif c == 58:  # :
                o[0] = 58
                o[1] = 32
                o += 2
            elif c == 44:  # ,
                o[0] = 44
                o[1] = 10
                memset(o + 2, 32, spaces)
                o += spaces + 2
            elif c == 123 or c == 91:  # { [
                o[0] = c
                o += 1
                depth += 1
                spaces = depth * self.unit if depth > 0 else 0
                after_open = True
            else:  # } ]
                depth -= 1
                spaces = depth * self.unit if depth > 0 else 0
                o[0] = 10
                memset(o + 1, 32, spaces)
                o[spaces + 1] = c
                o += spaces + 2
        self.size = o - self.out
        self.depth = depth
        self.after_open = after_open
        return 0

    cdef Py_ssize_t _string(self, const unsigned char* p, Py_ssize_t i, Py_ssize_t n) except -1:
        """Inside a string from p[i]: its bytes copied up to its closing quote, included
        (the string then ends), or to n. Returns where it stopped."""
        cdef Py_ssize_t start
        while i < n:
            if self.escaped:
                self.escaped = False
                self._put(p + i, 1)
                i += 1
                continue
            start = i
            while i < n and _IN_STRING_STOP[p[i]] == 0:
                i += 1
            if i == n:
                self._put(p + start, i - start)
                return n
            i += 1  # the quote or the backslash, copied with the run before it
            self._put(p + start, i - start)
            if p[i - 1] == 92:
                self.escaped = True
            else:
                self.in_string = False
                return i
        return n

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


# What ends a number, true, false or null: a structural byte, a quote or white space.
cdef unsigned char _STRUCTURE[256]
# What ends a run of a string's bytes copied as they are: its closing quote or a backslash.
cdef unsigned char _IN_STRING_STOP[256]


cdef int _fill_tables() noexcept:
    cdef const unsigned char* structure = b'{}[],:" \n\r\t'
    cdef int i
    for i in range(12):
        _STRUCTURE[structure[i]] = 1
    _IN_STRING_STOP[34] = 1
    _IN_STRING_STOP[92] = 1
    return 0


_fill_tables()
