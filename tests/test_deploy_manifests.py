"""The deployment files under deploy/: every reference between them, and to the repo, holds.

Kubernetes: the two kustomizations (deploy/kubernetes for one replica, .../sharded for the
StatefulSet) are resolved the way kustomize resolves plain `resources:` lists, and within each
result the selectors, port names, ConfigMap, Secret and probes must line up. The
PrometheusRule must hold exactly the groups of prometheus/rules.yml and alerts.yml (all three
are rendered from mixin/; tests/test_mixin_render.py checks they are current).

Compose: every file a service mounts exists, the Prometheus config passes `promtool check
config` laid out as the container sees it, and Grafana's provisioning points where the
volumes put things.
"""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import exporter

from .tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "compose"
EXPORTER_PORT = 19417
CONFIG_PATH = "/etc/convocore-exporter/config.yaml"
POD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"

Obj = dict[str, Any]


def load_yaml_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# Kubernetes -------------------------------------------------------------------------------


def kustomize_build(directory: Path) -> list[Obj]:
    """The objects a `resources:`-only kustomization yields (files and nested directories)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, (
        f"{directory}: this test resolves only plain resources lists"
    )
    objects: list[Obj] = []
    for entry in kustomization["resources"]:
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml: {entry} does not exist"
        objects += kustomize_build(path) if path.is_dir() else load_yaml_documents(path)
    return objects


def kustomization_files(directory: Path) -> set[Path]:
    """Every manifest file a kustomization reads, directly or through nested ones."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = {directory / "kustomization.yaml"}
    for entry in kustomization["resources"]:
        path = (directory / entry).resolve()
        files |= kustomization_files(path) if path.is_dir() else {path}
    return files


VARIANTS = {
    "single": (KUBERNETES, "Deployment"),
    "sharded": (KUBERNETES / "sharded", "StatefulSet"),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, list[Obj], Obj]:
    """(name, objects of the kustomize build, its workload)."""
    directory, workload_kind = VARIANTS[request.param]
    objects = kustomize_build(directory)
    (workload,) = [o for o in objects if o["kind"] == workload_kind]
    return request.param, objects, workload


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: Obj) -> Obj:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def secret_example() -> Obj:
    (secret,) = load_yaml_documents(KUBERNETES / "secret.example.yaml")
    return secret


def test_every_manifest_belongs_to_a_kustomization_except_the_secret_example() -> None:
    used = kustomization_files(KUBERNETES) | kustomization_files(KUBERNETES / "sharded")
    present = {p.resolve() for p in KUBERNETES.rglob("*.yaml")}
    assert present - used == {(KUBERNETES / "secret.example.yaml").resolve()}


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("single", ["ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceMonitor"]),
        ("sharded", ["ConfigMap", "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"]),
    ],
)
def test_each_variant_has_the_expected_kinds_once(name: str, kinds: list[str]) -> None:
    objects = kustomize_build(VARIANTS[name][0])
    assert sorted(o["kind"] for o in objects) == kinds
    for o in objects:
        assert o["metadata"]["labels"]["app.kubernetes.io/name"] == "convocore-crawler-exporter"
        assert "namespace" not in o["metadata"], "the namespace is chosen at apply time"


def test_workload_selector_matches_its_own_pod_labels(variant: tuple[str, list[Obj], Obj]) -> None:
    _, _, workload = variant
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selects(selector, workload["spec"]["template"]["metadata"]["labels"])


def test_service_selects_exactly_this_variants_pods() -> None:
    single = kustomize_build(VARIANTS["single"][0])
    sharded = kustomize_build(VARIANTS["sharded"][0])
    single_pods = one(single, "Deployment")["spec"]["template"]["metadata"]["labels"]
    sharded_pods = one(sharded, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    single_selector = one(single, "Service")["spec"]["selector"]
    sharded_selector = one(sharded, "Service")["spec"]["selector"]
    assert selects(single_selector, single_pods)
    assert not selects(single_selector, sharded_pods)
    assert selects(sharded_selector, sharded_pods)
    assert not selects(sharded_selector, single_pods)


def test_service_port_reaches_the_container_port(variant: tuple[str, list[Obj], Obj]) -> None:
    _, objects, workload = variant
    service = one(objects, "Service")
    (port,) = service["spec"]["ports"]
    container_ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
    assert port == {
        "name": "http-metrics",
        "port": EXPORTER_PORT,
        "targetPort": "http-metrics",
        "protocol": "TCP",
    }
    assert container_ports == {"http-metrics": EXPORTER_PORT}


def test_servicemonitor_selects_the_service_and_names_its_port(
    variant: tuple[str, list[Obj], Obj],
) -> None:
    _, objects, _ = variant
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"

    def seconds(duration: str) -> int:
        match = re.fullmatch(r"(\d+)s", duration)
        assert match, duration
        return int(match[1])

    assert seconds(endpoint["scrapeTimeout"]) < seconds(endpoint["interval"])


def test_probes_use_liveness_and_readiness_endpoints(variant: tuple[str, list[Obj], Obj]) -> None:
    _, _, workload = variant
    c = container(workload)
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http-metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http-metrics"}


def dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    uid, gid = users[-1]
    return int(uid), int(gid)


def test_pods_run_locked_down_as_the_images_numeric_user(
    variant: tuple[str, list[Obj], Obj],
) -> None:
    _, _, workload = variant
    pod = workload["spec"]["template"]["spec"]
    uid, gid = dockerfile_user()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert uid != 0
    assert pod["automountServiceAccountToken"] is False
    assert container(workload)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    resources = container(workload)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"memory"}


def test_image_is_this_version(variant: tuple[str, list[Obj], Obj]) -> None:
    _, _, workload = variant
    assert container(workload)["image"] == f"convocore-crawler-exporter:{exporter.__version__}"


def test_config_comes_from_the_configmap_at_the_images_default_path(
    variant: tuple[str, list[Obj], Obj],
) -> None:
    _, objects, workload = variant
    c = container(workload)
    assert c["args"][0] == f"--config.file={CONFIG_PATH}"
    directory, file_name = CONFIG_PATH.rsplit("/", 1)
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == directory]
    assert mount["readOnly"] is True
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    configmap = one(objects, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert set(configmap["data"]) == {file_name}
    # The writable scratch space a read-only root filesystem leaves.
    (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]


def test_token_comes_from_the_secret_and_only_through_the_environment(
    variant: tuple[str, list[Obj], Obj],
) -> None:
    _, objects, workload = variant
    env = {e["name"]: e for e in container(workload)["env"]}
    ref = env["CONVOCORE_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = secret_example()
    assert secret["kind"] == "Secret"
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["stringData"]
    config = yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])
    assert [w["token"] for w in config["workspaces"]] == ["${CONVOCORE_TOKEN}"]
    # Every variable the config refers to is set in the container.
    text = one(objects, "ConfigMap")["data"]["config.yaml"]
    assert set(re.findall(r"\$\{(\w+)\}", text)) <= set(env)


def test_statefulset_service_is_the_headless_one() -> None:
    objects = kustomize_build(VARIANTS["sharded"][0])
    statefulset = one(objects, "StatefulSet")
    service = one(objects, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"


def test_each_shard_gets_its_pod_index_and_the_replica_count_as_total() -> None:
    statefulset = one(kustomize_build(VARIANTS["sharded"][0]), "StatefulSet")
    c = container(statefulset)
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in c["args"])
    assert flags["shard"] == "$(SHARD)"
    assert int(flags["total-shards"]) == statefulset["spec"]["replicas"] > 1
    env = {e["name"]: e for e in c["env"]}
    assert env["SHARD"]["valueFrom"] == {"fieldRef": {"fieldPath": POD_INDEX_FIELD}}
    # $(VAR) is expanded by the kubelet only for variables defined earlier in the list.
    names = [e["name"] for e in c["env"]]
    assert names.index("SHARD") == 0


def test_both_variants_share_the_configmap_and_rules_through_common() -> None:
    single = kustomize_build(VARIANTS["single"][0])
    sharded = kustomize_build(VARIANTS["sharded"][0])
    for kind in ["ConfigMap", "PrometheusRule"]:
        assert one(single, kind) == one(sharded, kind)
    pods = [one(single, "Deployment"), one(sharded, "StatefulSet")]
    specs = [w["spec"]["template"]["spec"] for w in pods]
    containers = [container(w) for w in pods]
    # Apart from the shard arguments and variable, the two pod templates are the same.
    for c in containers:
        c["args"] = [a for a in c["args"] if not a.startswith(("--shard", "--total-shards"))]
        c["env"] = [e for e in c["env"] if e["name"] != "SHARD"]
    assert specs[0] == specs[1]


# The PrometheusRule -----------------------------------------------------------------------


def test_prometheusrule_groups_are_the_rule_files_groups() -> None:
    rules = yaml.safe_load((ROOT / "prometheus" / "rules.yml").read_text())
    alerts = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    (rule,) = load_yaml_documents(KUBERNETES / "common" / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == rules["groups"] + alerts["groups"]
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names)), "group names must be unique in one PrometheusRule"


def test_prometheusrule_is_valid_for_kubernetes_and_names_the_exporter() -> None:
    (rule,) = load_yaml_documents(KUBERNETES / "common" / "prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"] == {
        "name": "convocore-crawler-exporter",
        "labels": {"app.kubernetes.io/name": "convocore-crawler-exporter"},
    }
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}


# Example exporter configs -----------------------------------------------------------------


def example_configs(tmp_path: Path) -> list[Path]:
    """The ConfigMap's config and the Compose example, as files."""
    configmap = one(load_yaml_documents(KUBERNETES / "common" / "configmap.yaml"), "ConfigMap")
    from_configmap = tmp_path / "configmap-config.yaml"
    from_configmap.write_text(configmap["data"]["config.yaml"])
    return [from_configmap, COMPOSE / "config.example.yaml"]


@pytest.mark.integration
def test_example_configs_pass_the_exporters_own_check(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOCORE")}
    env["CONVOCORE_TOKEN"] = "vg_example_token"
    for config in example_configs(tmp_path):
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--config.check", f"--config.file={config}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, f"{config.name}: {result.stdout}{result.stderr}"
        assert "vg_example_token" not in result.stdout + result.stderr


def test_the_two_example_configs_say_the_same(tmp_path: Path) -> None:
    configmap, compose = example_configs(tmp_path)
    assert yaml.safe_load(configmap.read_text()) == yaml.safe_load(compose.read_text())


# Compose ----------------------------------------------------------------------------------


def compose(name: str = "docker-compose.yml") -> Obj:
    document = yaml.safe_load((COMPOSE / name).read_text())
    assert isinstance(document, dict)
    return document


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` with the environment empty: the defaults."""

    def default(match: re.Match[str]) -> str:
        assert match[2] is not None, f"{match[0]} has no default"
        return match[2]

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", default, text)


def bind_mounts(service: Obj) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = interpolate(volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE / source).resolve()
    return mounts


def test_compose_has_the_four_services_with_pinned_images() -> None:
    services = compose()["services"]
    assert sorted(services) == ["alertmanager", "exporter", "grafana", "prometheus"]
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published beyond loopback"


def test_compose_exporter_builds_this_repo_and_runs_the_demo() -> None:
    exporter_service = compose()["services"]["exporter"]
    context = (COMPOSE / exporter_service["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / exporter_service["build"]["dockerfile"]).is_file()
    assert exporter_service["image"] == f"convocore-crawler-exporter:{exporter.__version__}"
    assert exporter_service["command"] == ["--demo"]
    assert exporter_service["ports"] == [f"127.0.0.1:{EXPORTER_PORT}:{EXPORTER_PORT}"]


def test_compose_real_api_override_mounts_a_config_where_the_image_reads_it() -> None:
    override = compose("docker-compose.real-api.yml")["services"]
    assert sorted(override) == ["exporter"]
    service = override["exporter"]
    assert service["command"] == [f"--config.file={CONFIG_PATH}"]
    mounts = bind_mounts(service)
    assert set(mounts) == {CONFIG_PATH}
    assert mounts[CONFIG_PATH] == COMPOSE / "config.example.yaml"
    # The token is required from the caller's environment, never given a default.
    assert re.fullmatch(r"\$\{CONVOCORE_TOKEN:\?.+\}", service["environment"]["CONVOCORE_TOKEN"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f'CMD ["--config.file={CONFIG_PATH}"]' in dockerfile


def test_every_file_a_compose_service_mounts_exists() -> None:
    for name in ["docker-compose.yml", "docker-compose.real-api.yml"]:
        for service in compose(name)["services"].values():
            for target, source in bind_mounts(service).items():
                assert source.exists(), f"{name}: {source} (for {target}) does not exist"


def container_tree(service: Obj, root: Path) -> None:
    """Copy the service's bind mounts to where the container sees them, below root."""
    for target, source in bind_mounts(service).items():
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copyfile(source, destination)


@pytest.mark.integration
def test_compose_prometheus_config_passes_promtool_with_both_rule_files(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    service = compose()["services"]["prometheus"]
    container_tree(service, tmp_path)
    config = tmp_path / "etc" / "prometheus" / "prometheus.yml"
    assert f"--config.file=/{config.relative_to(tmp_path)}" in service["command"]
    result = subprocess.run(
        [promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS: 2 rule files found" in output


def static_targets(config: Obj) -> list[str]:
    targets = []
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            targets += group["targets"]
    for manager in config["alerting"]["alertmanagers"]:
        for group in manager["static_configs"]:
            targets += group["targets"]
    return targets


def test_compose_prometheus_targets_are_compose_services() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    services = compose()["services"]
    known = {"exporter": EXPORTER_PORT, "alertmanager": 9093, "prometheus": 9090}
    for target in static_targets(config):
        host, port = target.split(":")
        assert host in services, target
        assert known[host] == int(port), target
    assert sorted(static_targets(config)) == ["alertmanager:9093", f"exporter:{EXPORTER_PORT}"]


COMPOSE_ADDRESSES = {str(EXPORTER_PORT): "exporter", "9093": "alertmanager", "9090": "prometheus"}


def with_compose_addresses(text: str) -> str:
    """An example config's text with localhost:PORT replaced by the Compose service's name."""
    return re.sub(
        r"\b(?:localhost|127\.0\.0\.1):(\d+)\b",
        lambda m: f"{COMPOSE_ADDRESSES[m[1]]}:{m[1]}",
        text,
    )


def test_address_translation() -> None:
    text = "a: http://localhost:9090/x\nb: [127.0.0.1:19417, 'localhost:9093']\n"
    assert with_compose_addresses(text) == (
        "a: http://prometheus:9090/x\nb: [exporter:19417, 'alertmanager:9093']\n"
    )


@pytest.mark.parametrize(
    ("compose_file", "example"),
    [
        ("prometheus.yml", "prometheus/prometheus.yml"),
        ("grafana-datasource.yml", "grafana/provisioning/datasources/prometheus.yml"),
    ],
)
def test_compose_configs_are_the_examples_with_compose_addresses(
    compose_file: str, example: str
) -> None:
    """The Compose stack's own configs may differ from the repository's checked examples only
    in the addresses: what an example reaches on localhost, Compose reaches by service name."""
    expected = yaml.safe_load(with_compose_addresses((ROOT / example).read_text()))
    assert yaml.safe_load((COMPOSE / compose_file).read_text()) == expected


def test_compose_grafana_provisioning_points_where_the_volumes_put_things(tmp_path: Path) -> None:
    services = compose()["services"]
    grafana = services["grafana"]
    container_tree(grafana, tmp_path)
    provisioning = tmp_path / "etc" / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    for provider in providers["providers"]:
        dashboards = tmp_path / provider["options"]["path"].lstrip("/")
        assert "convocore-crawler.json" in {p.name for p in dashboards.glob("*.json")}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (tmp_path / home.lstrip("/")).is_file()
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert [s["url"] for s in sources["datasources"]] == ["http://prometheus:9090"]
    assert "prometheus" in services


# Schemas ----------------------------------------------------------------------------------
#
# Kubernetes objects against the OpenAPI-derived JSON schemas that kubernetes-validate ships,
# strictly (unknown fields are errors), for the oldest version the docs support (1.28, the
# first with the pod-index label the sharded variant uses) and the newest the package knows.
# ServiceMonitor and PrometheusRule are prometheus-operator CRDs with no schema there; they are
# checked by the reference tests above instead.

KUBERNETES_VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}


def all_kubernetes_objects() -> list[Obj]:
    objects = kustomize_build(KUBERNETES) + kustomize_build(KUBERNETES / "sharded")
    return [*objects, secret_example()]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_objects_pass_the_api_schema(version: str) -> None:
    unvalidated = set()
    for obj in all_kubernetes_objects():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unvalidated.add((obj["apiVersion"], obj["kind"]))
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert unvalidated == CRD_KINDS


def test_kubernetes_schema_check_refuses_unknown_and_mistyped_fields() -> None:
    (deployment,) = [o for o in kustomize_build(KUBERNETES) if o["kind"] == "Deployment"]
    misspelled = copy.deepcopy(deployment)
    only = container(misspelled)
    only["imagePullPolicyy"] = only.pop("imagePullPolicy", "IfNotPresent")
    mistyped = copy.deepcopy(deployment)
    mistyped["spec"]["replicas"] = "two"
    for broken, expected in [
        (misspelled, "'imagePullPolicyy' was unexpected"),
        (mistyped, "'two' is not of type 'integer'"),
    ]:
        with pytest.raises(kubernetes_validate.ValidationError) as caught:
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)
        assert expected in caught.value.message


# Compose files against the Compose Specification's JSON schema (compose-spec/compose-spec,
# Apache-2.0) as the PyPI package check-jsonschema ships it: `--builtin-schema vendor.compose-spec`.

COMPOSE_FILES = sorted(COMPOSE.glob("docker-compose*.yml"))


def check_compose(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            "--color",
            "never",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.integration
def test_compose_files_pass_the_compose_specification_schema() -> None:
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.real-api.yml", "docker-compose.yml"]
    result = check_compose(*COMPOSE_FILES)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        "ok -- validation done",
        "",
    )


@pytest.mark.integration
def test_compose_schema_check_refuses_an_unknown_service_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = (COMPOSE / "docker-compose.yml").read_text()
    assert text.count("\n    image: ") >= 1
    broken.write_text(text.replace("\n    image: ", "\n    imagee: ", 1))
    result = check_compose(broken)
    assert result.returncode == 1
    assert (
        f"{broken}::$.services.exporter: Unevaluated properties are not allowed "
        "('imagee' was unexpected)"
    ) in result.stdout
