"""optionspec is the one vocabulary of the conversion options: every reader says what it says.
The converter's validation, the flags of `xmlconv convert` and `xmlconv submit`, the OpenAPI
document as served, and the web page's form, each read back as a user meets it and compared
with optionspec.OPTIONS: the same names in the same order, defaults, allowed values, limits."""

from __future__ import annotations

import argparse
from html.parser import HTMLParser

import pytest

import converter.cli
from api import contract, create_app
from api.page import MAIN_OPTIONS
from client import cli as client_cli
from common.settings import load_settings
from converter import Options, parse_options
from optionspec import NOT_OPTIONS, OPTION_NAMES, OPTIONS, Option, plain
from optionspec.flags import shown_default
from testkit.commands import service_env
from testkit.waiting import free_port

DOC = contract.document()
SPECS = {option.name: option for option in OPTIONS}


def test_the_names_are_unique_and_no_request_parameter_is_an_option():
    assert len(set(OPTION_NAMES)) == len(OPTIONS)
    assert not set(NOT_OPTIONS) & set(OPTION_NAMES)


# -- the converter


def test_the_engines_options_are_the_vocabularys_with_its_defaults():
    assert {name: getattr(Options(), name) for name in OPTION_NAMES} == {
        option.name: option.default for option in OPTIONS}
    assert list(Options().to_dict()) == list(OPTION_NAMES)


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_NAMES)
def test_the_converter_accepts_what_the_vocabulary_allows_and_nothing_more(option: Option,
                                                                          accepted):
    name = option.name
    assert getattr(parse_options({name: option.default}), name) == option.default
    if option.kind == "choice":
        assert all(accepted(name, choice) for choice in option.choices)
        assert not accepted(name, "none-of-these")
    if option.kind == "int":
        assert accepted(name, option.low) and accepted(name, option.high)
        assert not accepted(name, option.low - 1) and not accepted(name, option.high + 1)
    if option.kind == "text":
        longest = "a" * option.max_length
        assert accepted(name, longest) and not accepted(name, longest + "a")
        assert accepted(name, "") == (option.min_length == 0 or option.nullable)
    if option.kind == "names":
        names = [f"n{i}" for i in range(option.max_items)]
        assert accepted(name, names) and not accepted(name, [*names, "one-more"])
    if option.kind == "bool":
        assert accepted(name, "true") and accepted(name, "false")
        assert not accepted(name, "maybe")
    assert not accepted("no_such_option", "x")


# -- the command lines


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[name]


@pytest.mark.parametrize("command", ["convert", "submit"])
def test_each_cli_has_one_flag_per_option_as_the_vocabulary_says(command: str):
    parser = (converter.cli._parser() if command == "convert" else client_cli._parser())
    actions = {a.dest: a for a in _subparser(parser, command)._actions if a.dest in SPECS}
    assert list(actions) == list(OPTION_NAMES)
    for name, action in actions.items():
        option = SPECS[name]
        assert action.option_strings == [option.flag_name]
        assert action.default is None  # not given: the library's or the server's default
        assert f"(default: {shown_default(option)})" in action.help.replace("%%", "%")
        if option.kind == "bool":
            assert action.nargs == 0 and action.const is (not option.default)
        else:
            assert list(action.choices or ()) == list(option.choices)
            assert action.type is (int if option.kind == "int" else
                                   None if option.kind == "names" else str)
        if option.kind == "int":
            assert f"{option.low}-{option.high}" in action.help


# -- the OpenAPI document


def resolve(node: dict) -> dict:
    """`node`, or what its $ref points to in the document."""
    while "$ref" in node:
        ref, node = node["$ref"], DOC
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    return node


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_NAMES)
def test_the_documents_schema_of_each_option_is_the_vocabularys(option: Option):
    schemas = DOC["components"]["schemas"]
    assert list(schemas["ConversionOptions"]["properties"]) == list(OPTION_NAMES)
    schema = schemas["ConversionOptions"]["properties"][option.name]
    assert schema["description"] == option.description
    kind = schema["type"]
    assert ("null" in kind) == option.nullable
    assert schema["default"] == (list(option.default) if option.kind == "names"
                                 else option.default)
    assert schema.get("enum", []) == list(option.choices)
    assert (schema.get("minimum"), schema.get("maximum")) == (option.low, option.high)
    if option.kind == "text":
        assert schema.get("minLength", 0) == option.min_length
        assert schema["maxLength"] == option.max_length
        assert schema.get("pattern") == option.pattern
    if option.kind == "names":
        assert schema["maxItems"] == option.max_items
    for path in ("/jobs", "/convert/{conversion}"):
        operation = DOC["paths"][path]["post"]
        (parameter,) = [p for p in operation["parameters"] if p.get("name") == option.name]
        assert parameter["in"] == "query"
        assert parameter["schema"] == contract.wire_schema(schema)
        body = resolve(operation["requestBody"])
        form = resolve(body["content"]["multipart/form-data"]["schema"])
        assert form["properties"][option.name] == {**contract.wire_schema(schema),
                                                   "description": option.description}


# -- the web page


class _Controls(HTMLParser):
    """Every option control of the page (data-option), its <option>s and its hint."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, dict] = {}
        self.hints: dict[str, str] = {}
        self._select: str | None = None
        self._hint: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if "data-option" in attributes:
            self.controls[attributes["name"]] = {**attributes, "tag": tag, "choices": []}
            self._select = attributes["name"] if tag == "select" else None
        elif tag == "option" and self._select:
            self.controls[self._select]["choices"].append(attributes["value"])
        elif tag == "p" and attributes.get("id", "").endswith("-hint"):
            self._hint = attributes["id"].removeprefix("opt-").removesuffix("-hint")
            self.hints[self._hint] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "p":
            self._hint = None

    def handle_data(self, data: str) -> None:
        if self._hint:
            self.hints[self._hint] += data


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> _Controls:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # the page needs no Redis
    app = create_app(load_settings(service_env(dead, tmp_path_factory.mktemp("data"))))
    response = app.test_client().get("/")
    assert response.status_code == 200
    controls = _Controls()
    controls.feed(response.get_data(as_text=True))
    return controls


def test_the_page_has_a_control_for_every_option_and_no_other(page: _Controls):
    assert list(page.controls) == [*MAIN_OPTIONS,
                                   *(name for name in OPTION_NAMES if name not in MAIN_OPTIONS)]


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_NAMES)
def test_the_pages_form_control_of_each_option_is_the_vocabularys(page: _Controls,
                                                                   option: Option):
    control = page.controls[option.name]
    assert page.hints[option.name].startswith(plain(option.description))
    if option.kind == "bool":
        assert control["type"] == "checkbox"
        assert control["data-default"] == ("true" if option.default else "false")
        assert ("checked" in control) == option.default
    elif option.kind == "choice":
        assert control["tag"] == "select" and control["choices"] == list(option.choices)
        assert control["data-default"] == option.default
    elif option.kind == "int":
        assert control["type"] == "number"
        assert (control["min"], control["max"]) == (str(option.low), str(option.high))
        assert control["data-default"] == ("" if option.default is None else str(option.default))
    else:
        assert control["type"] == "text"
        shown = {None: "", (): "", "\n": "\\n"}.get(option.default, option.default)
        assert control["data-default"] == shown
