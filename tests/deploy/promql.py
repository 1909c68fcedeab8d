"""PromQL written outside the alert rules (the Grafana dashboard, KEDA's prometheus triggers),
checked the way Prometheus would load it, and its metric names against what the service
exports (docs/operations.md's metric table, itself held to api/metrics.py by
test_prometheus_rules.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from testkit import REPO

OPERATIONS = REPO / "docs" / "operations.md"
# A name in an expression: an identifier not followed by `(` (a function), not a label name
# (followed by `=`, `!=`, `=~`, `!~` inside braces) and not a keyword.
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and",
                       "or", "unless", "bool", "offset", "inf", "nan",
                       # aggregations, which may come before their `by (...)`
                       "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk",
                       "bottomk", "quantile", "count_values", "limitk", "limit_ratio"})
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",),
             "gauge": ("",)}


def exported() -> dict[str, tuple[str, frozenset[str]]]:
    """Each series name the API's /metrics has -> (its family's name, its labels), from
    docs/operations.md's table (family, type, labels)."""
    doc = OPERATIONS.read_text()
    table = doc[doc.index("## The metrics"):doc.index("### Where each comes from")]
    names = {}
    for match in re.finditer(r"^\| `(xmlconv_[a-z_]+)` \| (\w+) \|\s*([^|]*?)\s*\|", table, re.M):
        family, kind, label_cell = match.groups()
        labels = frozenset(re.findall(r"`(\w+)`", label_cell))
        base = re.sub(r"_total$", "", family)
        for suffix in _SUFFIXES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[base + suffix] = (family, labels | extra)
    return names


def series_names(expr: str) -> set[str]:
    """The metric names an expression reads (label names, functions and keywords left out)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                               r"\1()", without_matchers)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_groupings)
    names = set()
    for match in _IDENTIFIER.finditer(without_ranges):
        name, rest = match.group(1), without_ranges[match.end():].lstrip()
        if rest.startswith("(") or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found = set()
    for matchers in re.findall(r"\{([^}]*)\}", without_strings):
        found |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*"
                               r"\(([^)]*)\)", without_strings):
        found |= {name.strip() for name in grouping.split(",") if name.strip()}
    return found


def check_syntax(exprs: dict[str, str], tmp_path: Path) -> None:
    """`promtool check rules` on a rule file recording each expression: promtool parses each
    with Prometheus's own parser and names the one that fails."""
    rules = [{"record": f"check:{re.sub(r'[^a-zA-Z0-9_]', '_', name)}", "expr": expr}
             for name, expr in exprs.items()]
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
