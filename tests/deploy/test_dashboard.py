"""docs/grafana/xmlconv.json, the Grafana dashboard: importable as it is (a dashboard model
with its schemaVersion and a Prometheus data source variable), every query valid PromQL
(promtool), naming only metrics and labels the API exports (docs/operations.md's table, held to
api/metrics.py by test_prometheus_rules.py), and every panel showing data when Prometheus
holds the service's series: promtool evaluates each query over series shaped as /metrics
exposes them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from promql import check_syntax, exported, label_names, series_names

from testkit import REPO

DASHBOARD = REPO / "docs" / "grafana" / "xmlconv.json"
# What Prometheus adds to every scraped series (kubernetes_sd_configs' relabelling adds the
# pod's and namespace's names).
TARGET_LABELS = {"instance", "job", "pod", "namespace"}
# Grafana's variables, as Prometheus receives them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def queries() -> dict[str, str]:
    """'panel title/refId' -> the PromQL Prometheus runs (Grafana's variables replaced)."""
    found = {}
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr}"
            found[f"{panel['title']}/{target['refId']}"] = expr
    return found


def test_it_is_a_dashboard_grafana_imports():
    model = dashboard()
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
    assert model["uid"] and model["title"] and "id" not in model  # a new dashboard on import
    [variable] = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    source = {"type": "prometheus", "uid": "${" + variable["name"] + "}"}
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"] and panel["title"] and panel["description"]
        for target in panel["targets"]:
            assert target.get("datasource", source) == source


def test_no_two_panels_overlap():
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in taken, (panel["title"], taken.get((x, y)))
                taken[(x, y)] = panel["title"]


def test_every_query_is_valid_promql(tmp_path):
    check_syntax(queries(), tmp_path)


def test_every_query_names_metrics_and_labels_the_service_exports():
    known = exported()
    for name, expr in queries().items():
        used = series_names(expr)
        assert used and used <= set(known), (name, used - set(known))
        labels = set().union(*(known[series][1] for series in used)) | TARGET_LABELS
        assert label_names(expr) <= labels, (name, label_names(expr) - labels)


def test_it_shows_what_an_operator_looks_for():
    """Queue depth, jobs by status and by error code, conversion duration, API latency and
    errors, workers."""
    everything = " ".join(queries().values())
    for wanted in ("xmlconv_queue_messages", "xmlconv_jobs_unfinished",
                   "xmlconv_conversion_duration_seconds_bucket",
                   "xmlconv_http_request_duration_seconds_bucket", "xmlconv_workers",
                   "xmlconv_worker_processes"):
        assert wanted in everything, wanted
    grouped = {name: expr for name, expr in queries().items()
               if "xmlconv_jobs_finished_total" in expr}
    assert any("by (status)" in expr for expr in grouped.values())
    assert any("by (error_code)" in expr for expr in grouped.values())
    assert any('status=~"5..' in expr for expr in queries().values())


# Label values of the series below, as the API exposes them.
_VALUES = {
    "route": ["/jobs", "/jobs/<job_id>"], "method": ["GET", "POST"],
    "status": None,  # by metric, below
    "format": ["json", "csv"], "error_code": [""], "queue": ["xmlconv", "xmlconv.webhooks"],
}
_STATUS = {
    "xmlconv_http_request_duration_seconds": ["200", "429", "503"],
    "xmlconv_jobs_finished_total": ["succeeded", "failed", "cancelled"],
    "xmlconv_jobs_unfinished": ["queued", "running"],
}


def _label_sets(family: str, labels: frozenset[str]) -> list[dict[str, str]]:
    sets: list[dict[str, str]] = [{"instance": "api-0:5000", "job": "xmlconv-api"}]
    for label in sorted(labels - {"le"}):
        values = _STATUS[family] if label == "status" else _VALUES[label]
        sets = [{**each, label: value} for each in sets for value in values]
    for each in sets:  # a failed job carries its code
        if family == "xmlconv_jobs_finished_total" and each.get("status") == "failed":
            each["error_code"] = "XML_PARSE_ERROR"
    return sets


def input_series() -> list[dict[str, str]]:
    """Every exported series, growing as a busy service's do (counters and histograms), or
    holding still (gauges), over 30 minutes at one sample a minute."""
    series = []
    for name, (family, labels) in exported().items():
        for each in _label_sets(family, labels):
            if name.endswith("_bucket"):
                for bound, step in (("0.1", 1), ("1", 5), ("+Inf", 10)):
                    series.append(_series(name, {**each, "le": bound}, f"0+{step}x30"))
            elif name.endswith(("_total", "_sum", "_count")):
                series.append(_series(name, each, "0+10x30"))
            else:
                series.append(_series(name, each, "3x30"))
    return series


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    matchers = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{matchers}}}", "values": values}


def test_every_panel_shows_data_from_a_service_with_traffic(tmp_path: Path):
    """promtool evaluates `absent(<query>)` for each query over the service's series and
    expects nothing: each query returns a result (no label that the series lack, no vector
    matching that leaves the two sides of a division unmatched, no wrong label value)."""
    (tmp_path / "none.yml").write_text("groups: []\n")
    tests = {
        "rule_files": ["none.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series(),
            "promql_expr_test": [{"expr": f"absent({expr})", "eval_time": "20m",
                                  "exp_samples": []} for expr in queries().values()],
        }],
    }
    (tmp_path / "dashboard_test.yml").write_text(yaml.safe_dump(tests))
    checked = subprocess.run(["promtool", "test", "rules", "dashboard_test.yml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(queries()) >= 15


def test_a_query_that_shows_nothing_is_caught(tmp_path: Path):
    """The check above bites: a label value no series has leaves a panel empty."""
    (tmp_path / "none.yml").write_text("groups: []\n")
    wrong = 'max(xmlconv_queue_messages{queue="conversions"})'
    tests = {"rule_files": ["none.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": input_series(),
        "promql_expr_test": [{"expr": f"absent({wrong})", "eval_time": "20m",
                              "exp_samples": []}]}]}
    (tmp_path / "wrong_test.yml").write_text(yaml.safe_dump(tests))
    checked = subprocess.run(["promtool", "test", "rules", "wrong_test.yml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode != 0 and re.search(r"got:.*1", checked.stdout + checked.stderr)
