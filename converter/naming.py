"""Keys for elements and attributes, as xmltodict writes them, per namespace mode.

- keep:   the name as written, prefix included (`x:tier`); xmlns declarations kept
          as attributes (`@xmlns`, `@xmlns:x`).
- strip:  local names only; no xmlns attributes.
- expand: `namespace-uri:local` (xmltodict's process_namespaces=True); an element's
          declarations become one `@xmlns` attribute mapping prefix ('' = default) to URI.

lxml reports names in Clark notation (`{uri}local`). Looking keys up in a dict keyed
by that name is the hot path; a name whose URI is bound to more than one prefix is
"ambiguous" and falls back to asking the element for its prefix.
"""

from __future__ import annotations

from lxml import etree

from .options import Options

XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
AMBIGUOUS = object()


def split(name: str) -> tuple[str | None, str]:
    if name[0] == "{":
        uri, local = name[1:].split("}", 1)
        return uri, local
    return None, name


class _Keys(dict):
    """name -> key, computed on first use by `compute`."""

    def __init__(self, compute) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, name: str):
        key = self[name] = self._compute(name)
        return key


class Naming:
    def __init__(self, options: Options) -> None:
        self.mode = options.namespaces
        self.attr_prefix = options.attr_prefix
        # uri -> prefixes bound to it anywhere so far (None = default namespace)
        self._prefixes: dict[str, list[str | None]] = {XML_NAMESPACE: ["xml"]}
        self.element_keys = _Keys(self._element_key)
        self.attribute_keys = _Keys(self._attribute_key)
        self.nested_declarations = False
        self._seen_later = 0
        self._root_declared = False

    # -- declarations ------------------------------------------------------------
    def declare(self, declarations: list[tuple[str | None, str]]) -> None:
        for prefix, uri in declarations:
            prefixes = self._prefixes.setdefault(uri, [])
            if prefix not in prefixes:
                prefixes.append(prefix)
                if len(prefixes) > 1:  # cached keys for this URI may now be wrong
                    self.element_keys.clear()
                    self.attribute_keys.clear()

    def update(self, stream) -> None:
        """Take in the declarations a TreeStream has seen since the last call."""
        if not self._root_declared:
            self.declare(stream.root_declarations)
            self._root_declared = True
        later = stream.later_declarations
        if len(later) > self._seen_later:
            self.declare(later[self._seen_later:])
            self._seen_later = len(later)
            self.nested_declarations = True

    # -- keys ----------------------------------------------------------------------
    def _element_key(self, tag: str):
        uri, local = split(tag)
        if uri is None or self.mode == "strip":
            return local
        if self.mode == "expand":
            return f"{uri}:{local}"
        prefixes = self._prefixes.get(uri, ())
        if len(prefixes) != 1:
            return AMBIGUOUS
        prefix = prefixes[0]
        return f"{prefix}:{local}" if prefix else local

    def element_key(self, element: etree._Element) -> str:
        key = self.element_keys[element.tag]
        if key is AMBIGUOUS:
            prefix = element.prefix
            local = split(element.tag)[1]
            key = f"{prefix}:{local}" if prefix else local
        return key

    def _attribute_key(self, name: str):
        uri, local = split(name)
        if uri is None or self.mode == "strip":
            return self.attr_prefix + local
        if self.mode == "expand":
            return f"{self.attr_prefix}{uri}:{local}"
        prefixes = [p for p in self._prefixes.get(uri, ()) if p]
        if len(prefixes) != 1:
            return AMBIGUOUS
        return f"{self.attr_prefix}{prefixes[0]}:{local}"

    def attribute_key(self, element: etree._Element, name: str) -> str:
        """Slow path for an attribute whose namespace has several prefixes: the one in
        scope on this element (lxml does not keep the prefix an attribute was written with)."""
        uri, local = split(name)
        in_scope = [p for p, u in element.nsmap.items() if u == uri and p]
        prefix = in_scope[0] if in_scope else self._prefixes.get(uri, ["ns"])[0]
        return f"{self.attr_prefix}{prefix}:{local}"

    # -- namespace declarations as attributes ----------------------------------------
    def declaration_entries(self, declarations: list[tuple[str | None, str]]) -> list[tuple]:
        """(key, value) pairs for an element's own declarations, or [] in strip mode."""
        if not declarations or self.mode == "strip":
            return []
        if self.mode == "expand":
            return [(self.attr_prefix + "xmlns", {p or "": u for p, u in declarations})]
        return [
            (f"{self.attr_prefix}xmlns:{p}" if p else f"{self.attr_prefix}xmlns", u)
            for p, u in declarations
        ]

    @staticmethod
    def own_declarations(element: etree._Element) -> list[tuple[str | None, str]]:
        """Declarations made on this element (compared with its parent's scope)."""
        parent = element.getparent()
        inherited = parent.nsmap if parent is not None else {}
        return [(p, u) for p, u in element.nsmap.items() if inherited.get(p) != u]
