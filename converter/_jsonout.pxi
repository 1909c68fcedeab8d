# Included by _accel.pyx: the byte buffers of the JSON writer (json, jsonl, yaml modes).
#
# Every open element writes its value as JSON bytes into a *sink*: the output, or the spool of
# the group it belongs to in its parent (xmltodict groups repeated children into a list at the
# first one's place, so a child's bytes wait until its parent closes, unless the group is the
# parent's first entry and already a list: then it is written straight through). A spool is a
# chain of byte chunks until it passes SPOOL_MEMORY, or until all spools together pass
# MEMORY_BUDGET, and an unlinked temporary file after that: the memory of document.py's
# _Spool, in C. A spool copied into another spool in memory hands over its chunks (no bytes
# move), so that a subtree's bytes are not copied once per level above it: a chain of nested
# elements would otherwise cost depth x output (depth^3 in YAML, whose lines carry the depth).

from cpython.bytes cimport _PyBytes_Resize
from libc.stdio cimport FILE, fdopen, fwrite, fread, fclose, fflush, rewind

DEF SPOOL_MEMORY = 4194304  # one group's bytes in memory (document.SPOOL_MEMORY)
DEF MEMORY_BUDGET = 33554432  # all groups' bytes in memory (document.MEMORY_BUDGET)
DEF OUT_FLUSH = 262144  # the output is handed to its writer past this many bytes
DEF OUT_CAPACITY = 327680  # the output's buffer, unless one put needs more
DEF KEEP_CAPACITY = 65536  # a reused spool keeps its first chunk up to this size
DEF COPY_PIECE = 1048576
DEF CHUNK_MIN = 256  # a spool's first chunk; each next one as big as the spool so far ...
DEF CHUNK_MAX = 65536  # ... up to this (kept below malloc's mmap threshold)
DEF FREE_CHUNKS = 64  # chunks of CHUNK_MAX kept for reuse (4 MiB): no fresh pages per chain
DEF SPLICE_MIN = 1024  # a smaller spool is copied: chunks stay well filled

DEF YAML_KEY_SLOTS = 1024  # YAML keys found by their JSON key's address (_JsonOut.yaml_key)
DEF OTHER_SLOTS = 1024  # YAML of recent strings that are not ASCII, found by their bytes
DEF OTHER_SIZE = 48  # ... when shorter than this

cdef const char* _JSON_HEX = "0123456789abcdef"
cdef const char* _BLANKS = b"                                                                "


cdef struct _Chunk:
    _Chunk* next
    Py_ssize_t start  # bytes at its front that are no longer the spool's (copy's skip)
    Py_ssize_t size  # (the spool's last chunk: the spool's `size` is its size)
    Py_ssize_t cap
    # its `cap` bytes follow


cdef inline char* _chunk_bytes(_Chunk* chunk) noexcept:
    return <char*>(chunk + 1)


cdef struct _Spool:
    char* data  # where puts go: the last chunk's bytes (the output: its whole buffer)
    Py_ssize_t size
    Py_ssize_t cap
    FILE* file
    bint is_out  # the engine's output (or a scratch buffer): one buffer, never spilled
    _Chunk* head  # a spool's chunks in order, `tail` the last; NULL when it has none
    _Chunk* tail
    Py_ssize_t held  # the spool's bytes in the chunks before `tail`


cdef inline Py_ssize_t _spool_size(_Spool* s) noexcept:
    """The bytes a spool in memory holds."""
    if s.tail is NULL:
        return 0
    return s.held + s.size - s.tail.start


cdef inline Py_ssize_t _next_chunk_cap(_Spool* s) noexcept:
    """A spool's next chunk: as big as the spool so far, within CHUNK_MIN and CHUNK_MAX, so
    that chunks are few and the last one's unused room is bounded."""
    return min(max(_spool_size(s), CHUNK_MIN), CHUNK_MAX)


cdef int _spool_forget(_Spool* s) noexcept:
    """The spool holds no chunk (they were dropped, freed or handed to another spool)."""
    s.head = NULL
    s.tail = NULL
    s.data = NULL
    s.size = 0
    s.cap = 0
    s.held = 0
    return 0


cdef int _spool_free(_Spool* s) noexcept:
    """A spool's memory and file, released (the engine is gone: no accounting)."""
    cdef _Chunk* chunk = s.head
    cdef _Chunk* next_chunk
    if s.file is not NULL:
        fclose(s.file)
        s.file = NULL
    while chunk is not NULL:
        next_chunk = chunk.next
        free(chunk)
        chunk = next_chunk
    return _spool_forget(s)


cdef struct _Other:
    Py_ssize_t size  # 0: an empty slot
    char text[OTHER_SIZE]
    PyObject* yaml  # its YAML as bytes (a reference owned by the slot)


cdef struct _Group:
    PyObject* key  # canonical JSON bytes of the key ('"name"'), owned by _JsonOut.keys
    _Spool spool
    Py_ssize_t count
    bint direct  # the level's first group, a list written straight into the level's sink
    bint forced
    bint is_map  # its first item is a map (YAML: how a key seen once is written)


@cython.final
cdef class _JsonOut:
    """The output and the spools of one document's JSON."""
    cdef _Spool out
    cdef object out_bytes  # the bytes object whose buffer out.data is, or None
    cdef Py_ssize_t memory  # bytes the spools hold in memory (their chunks' capacity)
    cdef _Chunk* spare  # chunks of CHUNK_MAX no spool holds, for the next ones (a list)
    cdef int nspare
    cdef readonly Py_ssize_t copied  # bytes copy() moved (tests: a subtree is not recopied)
    cdef object write  # the destination's write()
    cdef dict keys  # key str -> its canonical JSON bytes
    cdef dict names  # canonical JSON bytes -> key str
    cdef dict yaml_keys  # canonical JSON bytes -> the key in YAML
    cdef _Other* others  # strings that are not ASCII -> their YAML (they repeat)
    # yaml_keys' entries by the address of the canonical key (both kept alive by the dicts)
    cdef PyObject* yaml_from[YAML_KEY_SLOTS]
    cdef PyObject* yaml_to[YAML_KEY_SLOTS]

    def __cinit__(self):
        memset(&self.out, 0, sizeof(_Spool))
        self.out.is_out = True
        self.keys = {}
        self.names = {}
        self.yaml_keys = {}
        self.others = <_Other*>malloc(OTHER_SLOTS * sizeof(_Other))
        if self.others is NULL:
            raise MemoryError()
        memset(self.others, 0, OTHER_SLOTS * sizeof(_Other))

    def __dealloc__(self):
        cdef int i
        # (the output's buffer is out_bytes', released with it)
        cdef _Chunk* chunk
        while self.spare is not NULL:
            chunk = self.spare
            self.spare = chunk.next
            free(chunk)
        if self.others is not NULL:
            for i in range(OTHER_SLOTS):
                if self.others[i].yaml is not NULL:
                    Py_DECREF(<object>self.others[i].yaml)
            free(self.others)

    cdef bytes key(self, str key):
        cdef PyObject* known = PyDict_GetItem(self.keys, key)
        cdef _Spool scratch
        cdef bytes encoded
        cdef Py_ssize_t size
        cdef const char* utf8
        if known is not NULL:
            return <bytes>known
        memset(&scratch, 0, sizeof(_Spool))
        scratch.is_out = True  # a plain buffer: never flushed, since write is not called
        utf8 = PyUnicode_AsUTF8AndSize(key, &size)
        try:
            self._string_into(&scratch, utf8, size)
            encoded = PyBytes_FromStringAndSize(scratch.data, scratch.size)
        finally:
            free(scratch.data)
        self.keys[key] = encoded
        self.names[encoded] = key
        return encoded

    cdef bytes yaml_key(self, bytes key):
        cdef size_t slot = ((<size_t><PyObject*>key) * <size_t>0x9E3779B97F4A7C15ULL) >> 54
        cdef PyObject* known
        cdef bytes text
        if self.yaml_from[slot] == <PyObject*>key:
            return <bytes>self.yaml_to[slot]
        known = PyDict_GetItem(self.yaml_keys, key)
        if known is not NULL:
            text = <bytes>known
        else:
            text = yaml_string(self.names[key]).encode()
            self.yaml_keys[key] = text
        if PyDict_GetItem(self.names, key) is not NULL:  # a canonical key: it stays alive
            self.yaml_from[slot] = <PyObject*>key
            self.yaml_to[slot] = <PyObject*>text
        return text

    cdef inline int indent(self, _Spool* s, Py_ssize_t spaces) except -1:
        # Indents are short: 32 blanks copied whole (a constant size, so no call) and the
        # size moved by the indent's; the buffer needs room for the 32.
        if spaces <= 32 and s.file is NULL and s.size + 32 <= s.cap:
            memcpy(s.data + s.size, _BLANKS, 32)
            s.size += spaces
            return 0
        return self._indent(s, spaces)

    cdef int _indent(self, _Spool* s, Py_ssize_t spaces) except -1:
        while spaces > 64:
            self.put(s, _BLANKS, 64)
            spaces -= 64
        return self.put(s, _BLANKS, spaces)

    cdef int yaml_string_into(self, _Spool* s, const char* data, Py_ssize_t size) except -1:
        """render.yaml_string: plain when no YAML resolver could read it otherwise, else a
        JSON string (a YAML double-quoted scalar); strings that are not ASCII by the
        function itself."""
        cdef Py_ssize_t i
        cdef size_t hash = 14695981039346656037ULL  # FNV-1a
        cdef _Other* other = NULL
        cdef bytes text
        if _plain_ascii(<const unsigned char*>data, size):  # (plain strings are ASCII)
            return self.put(s, data, size)
        for i in range(size):
            if <unsigned char>data[i] >= 0x80:
                break
        else:
            return self._quoted_ascii(s, <const unsigned char*>data, size)
        if size < OTHER_SIZE:
            for i in range(size):
                hash = (hash ^ <unsigned char>data[i]) * 1099511628211ULL
            other = &self.others[(hash >> 32) & (OTHER_SLOTS - 1)]
            if other.size == size and memcmp(other.text, data, size) == 0:
                return self.put_bytes(s, <bytes>other.yaml)
        text = yaml_string(PyUnicode_DecodeUTF8(data, size, NULL)).encode()
        if other is not NULL:
            if other.yaml is not NULL:
                Py_DECREF(<object>other.yaml)
            Py_INCREF(text)
            other.yaml = <PyObject*>text
            other.size = size
            memcpy(other.text, data, size)
        return self.put_bytes(s, text)

    cdef int _quoted_ascii(self, _Spool* s, const unsigned char* data,
                           Py_ssize_t size) except -1:
        """An ASCII string quoted as JSON, DEL escaped as YAML wants it (_emit.pyx)."""
        cdef Py_ssize_t i
        cdef Py_ssize_t start = 0
        cdef unsigned char c
        cdef char escape[6]
        for i in range(size):
            c = data[i]
            if c < 32 or c == 34 or c == 92 or c == 127:
                break
        else:  # nothing to escape: one copy
            if s.file is NULL and s.size + size + 2 <= s.cap:
                s.data[s.size] = 34
                memcpy(s.data + s.size + 1, data, size)
                s.data[s.size + size + 1] = 34
                s.size += size + 2
                return 0
        self.put(s, "\"", 1)
        for i in range(size):
            c = data[i]
            if c >= 32 and c != 34 and c != 92 and c != 127:
                continue
            if i > start:
                self.put(s, <const char*>data + start, i - start)
            start = i + 1
            if c == 34:
                self.put(s, "\\\"", 2)
            elif c == 92:
                self.put(s, "\\\\", 2)
            elif c == 10:
                self.put(s, "\\n", 2)
            elif c == 13:
                self.put(s, "\\r", 2)
            elif c == 9:
                self.put(s, "\\t", 2)
            elif c == 8:
                self.put(s, "\\b", 2)
            elif c == 12:
                self.put(s, "\\f", 2)
            else:
                escape[0] = 92
                escape[1] = 117
                escape[2] = 48
                escape[3] = 48
                escape[4] = _JSON_HEX[c >> 4]
                escape[5] = _JSON_HEX[c & 15]
                self.put(s, escape, 6)
        if size > start:
            self.put(s, <const char*>data + start, size - start)
        self.put(s, "\"", 1)
        return 0

    cdef int flush(self) except -1:
        """The output so far to the writer: the bytes object it was written in, cut to its
        size (no copy); the next put starts another."""
        cdef PyObject* raw
        cdef Py_ssize_t size = self.out.size
        cdef bytes data
        if size:
            raw = <PyObject*>self.out_bytes
            Py_INCREF(<object>raw)  # held by raw alone once out_bytes lets go
            self.out_bytes = None
            self.out.data = NULL
            self.out.size = 0
            self.out.cap = 0
            _PyBytes_Resize(&raw, size)  # (shrinks in place; on failure raw is freed)
            data = <bytes>raw
            Py_DECREF(data)
            self.write(data)
        return 0

    cdef int _grow_out(self, Py_ssize_t need) except -1:
        """The output's buffer is a bytes object's (flush hands it over whole), at least
        OUT_CAPACITY, so that it is seldom grown between two flushes."""
        cdef Py_ssize_t cap = max(need * 2 + 256, OUT_CAPACITY)
        cdef bytes grown = PyBytes_FromStringAndSize(NULL, cap)
        cdef char* data = grown
        if self.out.size:
            memcpy(data, self.out.data, self.out.size)
        self.out_bytes = grown
        self.out.data = data
        self.out.cap = cap
        return 0

    cdef int _grow(self, _Spool* s, Py_ssize_t need) except -1:
        """A buffer that is one buffer (the output, a scratch one) made at least `need`."""
        if s == &self.out:
            return self._grow_out(need)
        cdef Py_ssize_t cap = need * 2 + 256
        cdef char* grown = <char*>realloc(s.data, cap)
        if grown is NULL:
            raise MemoryError()
        s.data = grown
        s.cap = cap
        return 0

    cdef int _add_chunk(self, _Spool* s) except -1:
        """A new last chunk for the spool (_next_chunk_cap)."""
        cdef Py_ssize_t cap = _next_chunk_cap(s)
        cdef _Chunk* chunk
        if cap == CHUNK_MAX and self.spare is not NULL:
            chunk = self.spare
            self.spare = chunk.next
            self.nspare -= 1
        else:
            chunk = <_Chunk*>malloc(sizeof(_Chunk) + cap)
            if chunk is NULL:
                raise MemoryError()
            chunk.cap = cap
        chunk.next = NULL
        chunk.start = 0
        chunk.size = 0
        self.memory += cap
        if s.tail is NULL:
            s.head = chunk
        else:
            s.tail.size = s.size
            s.tail.next = chunk
            s.held += s.size - s.tail.start
        s.tail = chunk
        s.data = _chunk_bytes(chunk)
        s.size = 0
        s.cap = cap
        return 0

    cdef int _drop_chunks(self, _Chunk* chunk) noexcept:
        """Chunks no spool holds any more: the full-size ones kept for reuse (a few)."""
        cdef _Chunk* next_chunk
        while chunk is not NULL:
            next_chunk = chunk.next
            self.memory -= chunk.cap
            if chunk.cap == CHUNK_MAX and self.nspare < FREE_CHUNKS:
                chunk.next = self.spare
                self.spare = chunk
                self.nspare += 1
            else:
                free(chunk)
            chunk = next_chunk
        return 0

    cdef int _spill(self, _Spool* s) except -1:
        """The spool goes to an unlinked temporary file (where TMPDIR says)."""
        cdef int fd
        cdef _Chunk* chunk
        cdef Py_ssize_t size
        with tempfile.TemporaryFile() as handle:
            fd = os.dup(handle.fileno())
        s.file = fdopen(fd, "w+b")
        if s.file is NULL:
            os.close(fd)
            raise MemoryError("cannot open a spool file")
        if s.tail is not NULL:
            s.tail.size = s.size
        chunk = s.head
        while chunk is not NULL:
            size = chunk.size - chunk.start
            if size and fwrite(_chunk_bytes(chunk) + chunk.start, 1, size,
                               s.file) != <size_t>size:
                raise OSError("cannot write a spool file")
            chunk = chunk.next
        self._drop_chunks(s.head)
        _spool_forget(s)
        return 0

    cdef inline int put(self, _Spool* s, const char* data, Py_ssize_t size) except -1:
        # Small enough to be inlined where it is called (most puts are a few bytes, of a
        # constant size the compiler then copies without a call); the rest is _put's.
        if s.file is NULL and s.size + size <= s.cap and not (s.is_out and
                                                              s.size + size > OUT_FLUSH):
            memcpy(s.data + s.size, data, size)
            s.size += size
            return 0
        return self._put(s, data, size)

    cdef int _put(self, _Spool* s, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = s.size + size
        cdef Py_ssize_t room
        if s.file is not NULL:
            if fwrite(data, 1, size, s.file) != <size_t>size:
                raise OSError("cannot write a spool file")
            return 0
        if s.is_out:
            if need > s.cap:
                self._grow(s, need)
            memcpy(s.data + s.size, data, size)
            s.size = need
            if need > OUT_FLUSH and self.write is not None and s == &self.out:
                self.flush()
            return 0
        while True:  # a spool: its last chunk filled, then new ones
            room = min(s.cap - s.size, size)
            if room > 0:
                memcpy(s.data + s.size, data, room)
                s.size += room
                data += room
                size -= room
            if size == 0:
                return 0
            if (_spool_size(s) + size > SPOOL_MEMORY
                    or self.memory + _next_chunk_cap(s) > MEMORY_BUDGET):
                self._spill(s)
                return self._put(s, data, size)
            self._add_chunk(s)

    cdef inline int put_bytes(self, _Spool* s, bytes data) except -1:
        return self.put(s, data, len(data))

    cdef int copy(self, _Spool* source, _Spool* dest, Py_ssize_t skip=0) except -1:
        """Everything `source` holds but its first `skip` bytes, appended to `dest`;
        `source` is emptied. Between spools in memory the chunks are handed over."""
        cdef char* piece
        cdef size_t got
        cdef _Chunk* chunk
        cdef Py_ssize_t size
        if source.file is not NULL:
            fflush(source.file)
            rewind(source.file)
            piece = <char*>malloc(COPY_PIECE)
            if piece is NULL:
                raise MemoryError()
            try:
                while True:
                    got = fread(piece, 1, COPY_PIECE, source.file)
                    if got == 0:
                        break
                    if <Py_ssize_t>got <= skip:
                        skip -= got
                        continue
                    self.copied += got - skip
                    self.put(dest, piece + skip, got - skip)
                    skip = 0
            finally:
                free(piece)
                fclose(source.file)
                source.file = NULL
            return self.reset(source)
        if source.tail is NULL:
            return 0
        size = _spool_size(source) - skip
        if size <= 0:
            return self.reset(source)
        if (not dest.is_out and dest.file is NULL and size >= SPLICE_MIN
                and size > dest.cap - dest.size
                and _spool_size(dest) + size <= SPOOL_MEMORY):
            return self._splice(source, dest, skip)
        source.tail.size = source.size
        chunk = source.head
        while chunk is not NULL:
            size = chunk.size - chunk.start
            if size <= skip:
                skip -= size
            else:
                self.copied += size - skip
                self.put(dest, _chunk_bytes(chunk) + chunk.start + skip, size - skip)
                skip = 0
            chunk = chunk.next
        return self.reset(source)

    cdef int _splice(self, _Spool* source, _Spool* dest, Py_ssize_t skip) except -1:
        """`source`'s chunks, but its first `skip` bytes, made the end of `dest`'s."""
        cdef Py_ssize_t total = _spool_size(dest) + _spool_size(source) - skip
        cdef _Chunk* chunk = source.head
        cdef Py_ssize_t size
        source.tail.size = source.size
        while skip:
            size = chunk.size - chunk.start
            if size > skip:
                chunk.start += skip
                break
            chunk.start = chunk.size
            skip -= size
            chunk = chunk.next
        if dest.tail is NULL:
            dest.head = source.head
        else:
            dest.tail.size = dest.size
            dest.tail.next = source.head
        dest.tail = source.tail
        dest.data = _chunk_bytes(source.tail)
        dest.size = source.tail.size
        dest.cap = source.tail.cap
        dest.held = total - (dest.size - dest.tail.start)
        return _spool_forget(source)

    cdef int reset(self, _Spool* s) noexcept:
        """The spool emptied; its first chunk kept when small (groups are reused)."""
        cdef _Chunk* head = s.head
        if s.file is not NULL:
            fclose(s.file)
            s.file = NULL
        if head is NULL:
            return 0
        if head.cap > KEEP_CAPACITY:
            self._drop_chunks(head)
            return _spool_forget(s)
        self._drop_chunks(head.next)
        head.next = NULL
        head.start = 0
        s.tail = head
        s.data = _chunk_bytes(head)
        s.size = 0
        s.cap = head.cap
        s.held = 0
        return 0

    cdef int _string_into(self, _Spool* s, const char* data, Py_ssize_t size) except -1:
        """A JSON string as orjson writes it: UTF-8 kept, `"` `\\` and control characters
        escaped (\\n \\r \\t \\b \\f, the others \\u00XX)."""
        cdef Py_ssize_t i
        cdef Py_ssize_t start = 0
        cdef unsigned char c
        cdef char escape[6]
        for i in range(size):
            c = <unsigned char>data[i]
            if c < 32 or c == 34 or c == 92:
                break
        else:  # nothing to escape (most strings): one copy
            if s.file is NULL and s.size + size + 2 <= s.cap:
                s.data[s.size] = 34
                memcpy(s.data + s.size + 1, data, size)
                s.data[s.size + size + 1] = 34
                s.size += size + 2
                return 0
        self.put(s, "\"", 1)
        for i in range(size):
            c = <unsigned char>data[i]
            if c >= 32 and c != 34 and c != 92:
                continue
            if i > start:
                self.put(s, data + start, i - start)
            start = i + 1
            if c == 34:
                self.put(s, "\\\"", 2)
            elif c == 92:
                self.put(s, "\\\\", 2)
            elif c == 10:
                self.put(s, "\\n", 2)
            elif c == 13:
                self.put(s, "\\r", 2)
            elif c == 9:
                self.put(s, "\\t", 2)
            elif c == 8:
                self.put(s, "\\b", 2)
            elif c == 12:
                self.put(s, "\\f", 2)
            else:
                escape[0] = 92
                escape[1] = 117
                escape[2] = 48
                escape[3] = 48
                escape[4] = _JSON_HEX[c >> 4]
                escape[5] = _JSON_HEX[c & 15]
                self.put(s, escape, 6)
        if size > start:
            self.put(s, data + start, size - start)
        self.put(s, "\"", 1)
        return 0

    cdef int value(self, _Spool* s, object value) except -1:
        """A value the Python side made (namespace modes, DTD defaults): str, typed, dict."""
        cdef Py_ssize_t size
        cdef const char* utf8
        if type(value) is str:
            utf8 = PyUnicode_AsUTF8AndSize(value, &size)
            return self._string_into(s, utf8, size)
        return self.put_bytes(s, _json_bytes(value))


cdef inline bint _wordish(unsigned char c) noexcept:
    return (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or (c >= 48 and c <= 57) \
        or c == 95 or c == 46 or c == 45 or c == 47


cdef bint _plain_ascii(const unsigned char* s, Py_ssize_t n) noexcept:
    """render._PLAIN for an ASCII string (as _emit.pyx): words of [\\w.-/] joined by single
    spaces, colons only inside a word, the first character a letter or '_', and no boolean
    or null word."""
    cdef Py_ssize_t i
    cdef unsigned char c, previous
    cdef unsigned char first = s[0] if n else 0
    cdef char lowered[5]
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
        for i in range(n):
            c = s[i]
            lowered[i] = <char>(c + 32 if 65 <= c <= 90 else c)
        if ((n == 1 and (lowered[0] == 121 or lowered[0] == 110))
                or (n == 2 and (memcmp(lowered, "no", 2) == 0 or memcmp(lowered, "on", 2) == 0))
                or (n == 3 and (memcmp(lowered, "yes", 3) == 0
                                or memcmp(lowered, "off", 3) == 0))
                or (n == 4 and (memcmp(lowered, "true", 4) == 0
                                or memcmp(lowered, "null", 4) == 0))
                or (n == 5 and memcmp(lowered, "false", 5) == 0)):
            return False
    return True


cdef bytes _json_bytes(object value):
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


cdef int _free_groups(_Group** groups, int capacity) noexcept:
    cdef int i
    if groups is NULL:
        return 0
    for i in range(capacity):
        if groups[i] is not NULL:
            _spool_free(&groups[i].spool)
            free(groups[i])
    free(groups)
    return 0
