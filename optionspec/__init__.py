"""The conversion options, written once: each one's name, kind, allowed values, limits, default,
description and command-line flag, and the request parameters that are not options.

Every reader derives its view from here: converter/options.py (the engine's `Options` and their
validation), optionspec/flags.py (the flags of `xmlconv convert` and `xmlconv submit`),
api/contract.py (the OpenAPI schemas) and api/page.py (the web page's form).
tests/unit/test_optionspec.py checks that each of them says what this module says.
Standard library only: the client imports it without the engine or the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TEXT = 64  # characters of every text option
MAX_NAMES = 256  # names in a list of element names
MAX_DEPTH_CEILING = 2048  # libxml2's own ceiling for nesting, even with huge trees
# \x1c-\x1f and \x85 are blanks to Python's \s, not to JSON Schema's (ECMAScript's): written out,
# the one pattern means the same to the converter and to the OpenAPI document.
RECORD_PATH_PATTERN = r"^[^/\s\x1c-\x1f\x85]+(/[^/\s\x1c-\x1f\x85]+)*$"

# Parameters of POST /jobs (query or form fields) that are not conversion options.
NOT_OPTIONS = ("format", "filename", "wait", "tag", "metadata", "webhook_url",
               "input_url")

_PYTHON_TYPES: dict[str, Any] = {"choice": str, "text": str, "names": tuple[str, ...],
                                 "bool": bool, "int": int}


@dataclass(frozen=True)
class Option:
    """One conversion option.

    `kind` is what a value is: choice (one of `choices`), text (`min_length` to `max_length`
    characters, matching `pattern` when there is one), names (a list of element names, at most
    `max_items`), bool, or int (`low` to `high`). A `nullable` option's default is None: absent,
    the engine decides (`default_text` says what, in words).

    `description` is for a person, in CommonMark with `code` in backticks (plain() drops them).
    The flag is `--name-with-dashes VALUE`; a bool's flag (`flag`, by default the same) takes no
    value and switches away from the default, `flag_help` saying what that does.
    """

    name: str
    kind: str
    default: Any
    label: str  # the web page's name for it
    description: str
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    min_length: int = 0
    max_length: int = MAX_TEXT
    max_items: int = MAX_NAMES
    pattern: str | None = None
    shape: str = ""  # the pattern in words, for the error that refuses a value
    nullable: bool = False
    flag: str = ""
    flag_help: str = ""
    metavar: str | None = None
    default_text: str | None = None

    @property
    def python_type(self) -> Any:
        kind = _PYTHON_TYPES[self.kind]
        return kind | None if self.nullable else kind

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def plain(text: str) -> str:
    """A description as plain text (the page, --help): without the backticks."""
    return text.replace("`", "")


OPTIONS: tuple[Option, ...] = (
    Option("namespaces", "choice", "keep", "Namespaces",
           "`keep`: names as written, with prefixes (`x:tier`), and xmlns declarations as "
           "attributes; `strip`: local names; `expand`: `uri:local` names.",
           choices=("keep", "strip", "expand")),
    Option("attr_prefix", "text", "@", "Attribute prefix",
           "Prefix of attribute keys (json, jsonl, yaml; csv column names).", metavar="PREFIX"),
    Option("text_key", "text", "#text", "Text key",
           "Key of text beside attributes or children (must differ from `attr_prefix`).",
           min_length=1, metavar="KEY"),
    Option("force_list", "names", (), "Always lists",
           "Element names always made lists, even when they occur once (in a request: names "
           "separated by commas).", metavar="NAME", default_text="none"),
    Option("strip_whitespace", "bool", True, "Strip whitespace",
           "Strip text; `false` keeps whitespace as written.",
           flag="--keep-whitespace", flag_help="keep whitespace-only and unstripped text",
           default_text="text stripped"),
    Option("types", "choice", "string", "Value types",
           "`infer`: numbers and true/false become numbers and booleans.",
           choices=("string", "infer")),
    Option("indent", "int", None, "Indent",
           "json: indent by this many spaces; absent, empty or 0: compact output.",
           low=0, high=8, nullable=True, metavar="N", default_text="compact"),
    Option("record_path", "text", None, "Record path",
           "jsonl, csv: the record element's path, e.g. `orders/order`; absent or empty: guessed.",
           min_length=1, pattern=RECORD_PATH_PATTERN, shape="'root/record'", nullable=True,
           metavar="PATH",
           default_text="the most repeated element, picked from the document's first 4 MiB"),
    Option("separator", "text", "\n", "Separator", "text: written after each text node.",
           min_length=1, metavar="TEXT", default_text="newline"),
    Option("include_attributes", "bool", False, "Include attributes",
           "text: attribute values before the element's text.",
           flag_help="text: include attribute values, before the element's text",
           default_text="not included"),
    Option("max_depth", "int", 1000, "Maximum depth",
           "Deeper nesting fails the conversion with `DEPTH_LIMIT_EXCEEDED`.",
           low=1, high=MAX_DEPTH_CEILING, metavar="N"),
)
OPTION_NAMES: tuple[str, ...] = tuple(option.name for option in OPTIONS)
