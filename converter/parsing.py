"""Secure, incremental parsing with lxml: the growing tree, fed one chunk at a time.

libxml2 builds the tree in C while we feed it; callers look at the tree between
chunks, convert the children that are complete and delete them, so memory holds
only the open path and one chunk's worth of elements.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from lxml import etree

from .errors import (
    DEPTH_LIMIT_EXCEEDED,
    EMPTY_INPUT,
    ENCODING_ERROR,
    NOT_XML,
    XML_PARSE_ERROR,
    XML_SECURITY_VIOLATION,
    ConversionError,
)
from .source import Source

# Untrusted input: nothing is fetched or expanded. Entity references stay unexpanded
# (and documents declaring entities are refused below), DTDs are never loaded, the
# network is never used. huge_tree lifts libxml2's 256-level depth cap so that our
# own, configurable limit applies; it does not enable entity expansion.
PARSER_OPTIONS = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": True,
    "remove_comments": True,
    "remove_pis": True,
    "strip_cdata": True,
    "recover": False,
    "collect_ids": False,  # and so no xml:id checks: expat (xmltodict) makes none
    # Attribute defaults from the internal DTD subset, as expat applies them. This
    # makes libxml2 want the external subset too; _NoExternalResources answers every
    # such request with nothing, so no file or URL is ever read.
    "attribute_defaults": True,
}


class _NoExternalResources(etree.Resolver):
    def resolve(self, url, public_id, context):
        return self.resolve_string("", context)


def _parser(**kwargs) -> etree.XMLPullParser:
    parser = etree.XMLPullParser(**kwargs, **PARSER_OPTIONS)
    parser.resolvers.add(_NoExternalResources())
    return parser

_SNIFF_LIMIT = 16 * 1024 * 1024  # the root start tag must appear within this many bytes

_CODES_BY_MESSAGE = (
    ("amplification", XML_SECURITY_VIOLATION),
    ("entity reference loop", XML_SECURITY_VIOLATION),
    ("Excessive depth", DEPTH_LIMIT_EXCEEDED),
    ("Document is empty", EMPTY_INPUT),
    ("Start tag expected", NOT_XML),
    ("not proper UTF", ENCODING_ERROR),
    ("encoding", ENCODING_ERROR),
    ("Encoding", ENCODING_ERROR),
    ("Invalid bytes in character", ENCODING_ERROR),
)


def _error_from(exc: etree.XMLSyntaxError) -> ConversionError:
    # The first error libxml2 logged for this document is the cause (the thread's log is
    # cleared when a document starts); the exception itself can carry a later, vaguer
    # one ("no element found"), as a push parser may stumble on after the first error.
    logged = [e for e in exc.error_log if e.level_name in ("FATAL", "ERROR") and e.line]
    if logged:
        message, line, column = logged[0].message, logged[0].line, logged[0].column
    else:
        message = exc.msg or str(exc)
        line, column = exc.position if exc.position else (0, 0)
    # libxml2 appends ", line N, column M" to some messages; the fields carry that.
    message = message.split(", line ")[0].strip()
    code = next((c for text, c in _CODES_BY_MESSAGE if text in message), XML_PARSE_ERROR)
    return ConversionError(code, message, line=line or None, column=column or None)


def _feed(parser: etree.XMLPullParser, chunk: bytes) -> None:
    try:
        parser.feed(chunk)
    except etree.XMLSyntaxError as exc:
        raise _error_from(exc) from None
    except LookupError as exc:  # an encoding name libxml2 and Python do not know
        raise ConversionError(ENCODING_ERROR, f"unsupported encoding: {exc}") from None


def _close(parser: etree.XMLPullParser) -> None:
    try:
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise _error_from(exc) from None


def refuse_entities(root: etree._Element) -> None:
    """Documents that declare entities are refused, as xmltodict refuses them.

    This closes off billion laughs, quadratic blowup and external entities at once,
    whatever the entities would expand to.
    """
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is None:
        return
    for entity in dtd.iterentities():
        what = "external entity" if entity.system_url else "entity"
        raise ConversionError(
            XML_SECURITY_VIOLATION,
            f"the document declares the {what} '{entity.name}'; entity declarations "
            "are refused for security",
            line=1,
        )


class TreeStream:
    """Feeds a Source to libxml2 and yields after every chunk; `root` is the tree so far."""

    def __init__(self, source: Source, max_depth: int) -> None:
        self.source = source
        self.max_depth = max_depth
        self.root: etree._Element | None = None

    def __iter__(self) -> Iterator[bool]:
        """Yields False after each chunk (once the root has started), then True once
        the document is complete."""
        etree.clear_error_log()  # errors are read back from it: start from this document's
        chunks = iter(self.source.chunks())
        try:
            seen, root_tag = self._sniff_root_tag(chunks)
            yield from self._parse(root_tag, chain(seen, chunks))
        except ConversionError as error:
            if error.code != DEPTH_LIMIT_EXCEEDED:
                raise
            # libxml2's own ceiling (2048) was hit: say it in terms of the user's limit.
            raise ConversionError(
                DEPTH_LIMIT_EXCEEDED,
                f"elements are nested deeper than the limit of {self.max_depth} levels",
                line=error.line, column=error.column,
            ) from None

    def _parse(self, root_tag: str, chunks: Iterator[bytes]) -> Iterator[bool]:
        parser = _parser(events=("start",), tag=root_tag)
        for chunk in chunks:
            _feed(parser, chunk)
            self._read_events(parser)
            if self.root is not None:
                yield False
        _close(parser)
        self._read_events(parser)
        yield True

    def _sniff_root_tag(self, chunks: Iterator[bytes]) -> tuple[list[bytes], str]:
        """Parse just far enough to learn the root's tag, so that the real parser only
        reports events for the root (one event per element would cost Python time)."""
        sniffer = _parser(events=("start",))
        seen: list[bytes] = []
        size = 0
        for chunk in chunks:
            seen.append(chunk)
            size += len(chunk)
            _feed(sniffer, chunk)
            for _event, element in sniffer.read_events():
                return seen, element.tag
            if size > _SNIFF_LIMIT:
                break
        if not self.source.saw_content:
            raise ConversionError(EMPTY_INPUT, "the input contains only whitespace")
        if size <= _SNIFF_LIMIT:
            _close(sniffer)  # the whole input was read: libxml2 says what is wrong, if anything
            for _event, element in sniffer.read_events():
                return seen, element.tag
        raise ConversionError(NOT_XML, "the input has no root element")

    def _read_events(self, parser: etree.XMLPullParser) -> None:
        for _event, element in parser.read_events():
            if self.root is None:
                refuse_entities(element)
                self.root = element
