"""docs/prometheus/alerts.yml and docs/operations.md against promtool (Debian's prometheus
package, `make install`): the rules load and fire when they should (promtool test rules on
prometheus_rules_test.yml), the documented scrape configuration is valid, and the metric names
in the rules and the doc are the ones api/metrics.py exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from testkit import REPO

ALERTS = REPO / "docs" / "prometheus" / "alerts.yml"
OPERATIONS = REPO / "docs" / "operations.md"
NAME = re.compile(r"\bxmlconv_[a-z_]+")


def promtool(*argv: str, cwd: Path = REPO) -> None:
    checked = subprocess.run(["promtool", *argv], cwd=cwd, capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_load():
    promtool("check", "rules", str(ALERTS))


def test_the_alerts_fire_when_they_should_and_only_then():
    promtool("test", "rules", "prometheus_rules_test.yml", cwd=REPO / "tests" / "deploy")


def test_the_documented_scrape_configuration_is_valid(tmp_path):
    doc = OPERATIONS.read_text()
    scraping = doc[doc.index("## Scraping"):]
    config = re.search(r"```yaml\n(.*?)```", scraping, re.S).group(1)
    files = re.findall(r"(/etc/prometheus/[\w.-]+)", config)
    assert len(files) == 2  # the API's token, Flower's password
    for path in files:
        (tmp_path / Path(path).name).write_text("secret\n")
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/", f"{tmp_path}/"))
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    promtool("check", "config", str(tmp_path / "prometheus.yml"))


def base(name: str) -> str:
    return re.sub(r"_(total|count|sum|bucket)$", "", name)


def test_the_rules_and_the_doc_name_the_metrics_the_api_exposes():
    exposed = set(NAME.findall((REPO / "api" / "metrics.py").read_text()))
    table = doc_table_names()
    assert {base(name) for name in table} == exposed
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    used = {base(name) for rule in rules for name in NAME.findall(rule["expr"])}
    assert used <= exposed and len(used) >= 6


def doc_table_names() -> set[str]:
    doc = OPERATIONS.read_text()
    table = doc[doc.index("## The metrics"):doc.index("### Where each comes from")]
    return set(re.findall(r"^\| `(xmlconv_[a-z_]+)`", table, re.M))
