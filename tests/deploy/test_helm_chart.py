"""The Helm chart (``helm/``) on the official JupyterHub chart, checked without a cluster.

A copy of the chart gets JupyterHub's chart in its ``charts/`` (where ``helm
dependency update`` puts it), then Helm's own Go SDK (``helm_python``) lints,
renders and dry-run installs it. Every manifest, and every user pod that
KubeSpawner builds from the hub configuration the chart renders (z2jh's own
``jupyterhub_config.py``, one pod per profile), is validated against the
Kubernetes schemas of the oldest version the chart declares, and of the newest
one known. What only a real cluster can show is listed in
docs/deploy/kubernetes.md ("Not verified without a cluster").
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


def _require(module: str, package: str) -> types.ModuleType:
    """Import a test dependency; missing, the tests fail (never skip) and say what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"tests/deploy needs {package}: pip install '{package}' ({exc})", pytrace=False)


helm = _require("helm_python", "helm-python-sdk>=0.2.2")
kubernetes_validate = _require("kubernetes_validate", "kubernetes-validate>=1.37")
kubespawner_spawner = _require("kubespawner.spawner", "jupyterhub-kubespawner>=7")
k8s_client = _require("kubernetes_asyncio.client", "jupyterhub-kubespawner>=7")
jupyterhub_scopes = _require("jupyterhub.scopes", "jupyterhub>=5")
tornado_httpclient = _require("tornado.httpclient", "tornado")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())
DEPENDENCY = CHART_YAML["dependencies"][0]
RELEASE = NAMESPACE = "orchestrator"
MIN_KUBE = re.fullmatch(r">=\s*v?(\d+\.\d+\.\d+)(-0)?", CHART_YAML["kubeVersion"]).group(1)  # type: ignore[union-attr]
NEWEST_KUBE = kubernetes_validate.latest_version()
#: custom resources of the Prometheus Operator: no Kubernetes schema, checked by hand below
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
SECRET_ENV = {
    "ORCHESTRATOR_DATABASE_URL",
    "ORCHESTRATOR_DATABASE_ADMIN_URL",
    "ORCHESTRATOR_ENCRYPTION_KEYS",
    "ORCHESTRATOR_RUNS_DATABASE_URL",
    "JUPYTERHUB_API_TOKEN",
}
DB_CLIENT_LABEL = ("orchestrator/database-client", "true")

PASSWORD = "sentinel-password-3f9c"
KEY_RING = "k1:" + base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("=")
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "production": yaml.safe_load((CHART / "values-production.yaml").read_text()),
    "chart-made-secret": {
        "database": {
            "existingSecret": "",
            "url": f"postgresql://orchestrator_app:{PASSWORD}@10.20.0.5:5432/orchestrator",
            "adminUrl": f"postgresql://orchestrator_owner:{PASSWORD}-owner@10.20.0.5:5432/orchestrator",
            "encryptionKeys": KEY_RING,
            "runsUrl": f"postgresql://orchestrator_runs:{PASSWORD}-runs@10.20.0.5:5432/orchestrator_runs",
        }
    },
    "in-cluster-database": {"database": {"networkPolicy": {"podSelector": {"app.kubernetes.io/name": "postgresql"}}}},
}

Doc = dict[str, Any]


# ---- the chart, with its dependency where `helm dependency update` puts it --------------------


def jupyterhub_chart() -> Path:
    """JupyterHub's chart: $ORCHESTRATOR_JUPYTERHUB_CHART, helm/charts/, or the shared offline copy."""
    name = f"{DEPENDENCY['name']}-{DEPENDENCY['version']}.tgz"
    candidates = [
        CHART / "charts" / DEPENDENCY["name"],
        CHART / "charts" / name,
        ROOT.parent / "shared/charts/jupyterhub",
    ]
    if os.environ.get("ORCHESTRATOR_JUPYTERHUB_CHART"):
        candidates = [Path(os.environ["ORCHESTRATOR_JUPYTERHUB_CHART"])]
    for path in candidates:
        if (path / "Chart.yaml").is_file() or (path.suffix == ".tgz" and path.is_file()):
            return path
    pytest.fail(
        f"JupyterHub's chart {DEPENDENCY['version']} is not here (looked in {', '.join(map(str, candidates))}): "
        "run `helm dependency update helm` or set ORCHESTRATOR_JUPYTERHUB_CHART to a copy",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("chart") / "orchestrator"
    shutil.copytree(CHART, target, ignore=shutil.ignore_patterns("charts", "image"))
    dependency = jupyterhub_chart()
    (target / "charts").mkdir()
    if dependency.is_dir():
        shutil.copytree(dependency, target / "charts" / DEPENDENCY["name"])
    else:
        shutil.copy(dependency, target / "charts")
    for folder, _, _ in os.walk(target):  # the shared copy is read-only
        os.chmod(folder, 0o755)
    return target


def render(chart_dir: Path, values: dict[str, Any]) -> list[Doc]:
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith((".tpl", "NOTES.txt")):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="module")
def rendered(chart_dir: Path) -> dict[str, list[Doc]]:
    return {name: render(chart_dir, values) for name, values in VALUE_SETS.items()}


# ---- reading manifests ---------------------------------------------------------------------------


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pods_of(docs: list[Doc]) -> dict[str, Doc]:
    """Each workload's pod template (metadata and spec), by "Kind/name"."""
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"] for d in docs if d["kind"] in WORKLOADS}


def ours(docs: list[Doc]) -> dict[str, Doc]:
    return {
        key: pod
        for key, pod in pods_of(docs).items()
        if pod["metadata"]["labels"].get("app.kubernetes.io/name") == "orchestrator"
    }


def containers(pod: Doc) -> list[Doc]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_data(doc: Doc) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in doc.get("data", {}).items()}


def hub_values(docs: list[Doc]) -> dict[str, Any]:
    """The JupyterHub chart's values, as the hub pod reads them (its Secret's values.yaml)."""
    return yaml.safe_load(secret_data(one(docs, "Secret", "hub"))["values.yaml"])


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def worker_args(container: Doc) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in container.get("args", []))


# ---- user pods, built by KubeSpawner from the hub configuration the chart renders ---------------


def hub_configuration(docs: list[Doc]) -> Any:
    """Run z2jh's own jupyterhub_config.py (from the rendered hub ConfigMap) on the rendered hub Secret.

    z2jh reads its values and secrets from files mounted in the hub pod; here the
    same content comes from the manifests. The curl HTTP client it selects is not
    needed to build pods and is left out.
    """
    from traitlets.config import Config

    files = one(docs, "ConfigMap", "hub")["data"]
    secrets = secret_data(one(docs, "Secret", "hub"))
    values = yaml.safe_load(secrets["values.yaml"])
    z2jh = types.ModuleType("z2jh")
    exec(compile(files["z2jh.py"], "z2jh.py", "exec"), z2jh.__dict__)

    def get_secret_value(key: str, default: Any = "never-explicitly-set") -> Any:
        if key in secrets:
            return secrets[key]
        if default != "never-explicitly-set":
            return default
        raise KeyError(f"{key} is in no hub Secret")

    z2jh._load_config = lambda: values
    z2jh._get_config_value = files.__getitem__
    z2jh.get_secret_value = get_secret_value
    config = Config()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "z2jh", z2jh)
        patch.setattr(sys, "path", list(sys.path))
        patch.setattr(tornado_httpclient.AsyncHTTPClient, "configure", lambda *args, **kwargs: None)
        for name, value in {
            "HUB_SERVICE_PORT": "8081",
            "PROXY_API_SERVICE_PORT": "8001",
            "POD_NAMESPACE": NAMESPACE,
        }.items():
            patch.setenv(name, value)
        namespace = {"get_config": lambda: config, "__file__": "/usr/local/etc/jupyterhub/jupyterhub_config.py"}
        exec(compile(files["jupyterhub_config.py"], "jupyterhub_config.py", "exec"), namespace)
    return config


def user_pods(docs: list[Doc]) -> dict[str, Doc]:
    """The pod KubeSpawner makes (get_pod_manifest, i.e. make_pod) for each profile, by slug."""
    config = hub_configuration(docs)

    async def build() -> dict[str, Doc]:
        pods = {}
        async with k8s_client.ApiClient() as api:
            for profile in config.KubeSpawner.profile_list:
                spawner = kubespawner_spawner.KubeSpawner(config=config, _mock=True)
                spawner.user_options = {"profile": profile["slug"]}
                await spawner.load_user_options()
                pods[profile["slug"]] = api.sanitize_for_serialization(await spawner.get_pod_manifest())
        return pods

    with pytest.MonkeyPatch.context() as patch:
        # no cluster: the spawner's Kubernetes client is never used to build a pod
        patch.setattr(kubespawner_spawner, "load_config", lambda **kwargs: None)
        patch.setattr(kubespawner_spawner, "shared_client", lambda *args, **kwargs: None)
        return asyncio.run(build())


@pytest.fixture(scope="module")
def spawned(rendered: dict[str, list[Doc]]) -> dict[str, dict[str, Doc]]:
    return {name: user_pods(rendered[name]) for name in ("default", "production")}


# ---- validity --------------------------------------------------------------------------------------


def schema_problem(doc: Doc, version: str) -> str | None:
    what = f"{doc['kind']}/{doc['metadata'].get('name', '?')} ({doc['apiVersion']})"
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            return None
        return f"{what}: Kubernetes {version} has no such kind"
    except kubernetes_validate.ValidationError as exc:
        return f"{what}: {exc.message} at /{'/'.join(map(str, exc.absolute_path))}"
    return None


def test_chart_depends_on_the_official_jupyterhub_chart(chart_dir: Path) -> None:
    assert CHART_YAML["apiVersion"] == "v2"
    assert DEPENDENCY == {"name": "jupyterhub", "version": "4.4.0", "repository": "https://hub.jupyter.org/helm-chart/"}
    [listed] = helm.dependency_list(chart_dir)
    assert (listed["name"], listed["version"]) == ("jupyterhub", "4.4.0")
    assert listed["status"] in {"ok", "unpacked"}, listed
    with helm.Chart.load(chart_dir) as chart:
        [loaded] = chart.dependencies
    # Helm checks kubeVersion on the top-level chart only: ours asks what z2jh asks
    assert CHART_YAML["kubeVersion"] == loaded["kubeVersion"]


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_lint_is_clean(chart_dir: Path, values_name: str) -> None:
    report = helm.lint(
        chart_dir,
        VALUE_SETS[values_name],
        strict=True,
        kube_version=f"v{MIN_KUBE}",
        with_subcharts=True,
        namespace=NAMESPACE,
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_dry_run_install_keeps_hooks_out_of_the_release(chart_dir: Path) -> None:
    with helm.Config(namespace=NAMESPACE, storage_driver="memory") as config, helm.Chart.load(chart_dir) as chart:
        release = config.install(chart, RELEASE, VALUE_SETS["production"], dry_run="client")
    manifest = [d for d in yaml.safe_load_all(release["manifest"]) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifest}
    assert ("Deployment", "orchestrator-api") in kinds
    assert ("Deployment", "orchestrator-worker-gpu") in kinds
    # hooks are run by Helm around the release, not part of it
    assert ("Job", "orchestrator-migrate") not in kinds
    assert ("NetworkPolicy", "orchestrator-migrate") not in kinds


def test_values_schema_accepts_every_shipped_values_set(chart_dir: Path) -> None:
    with helm.Chart.load(chart_dir) as chart:
        for values in VALUE_SETS.values():
            chart.validate_schema(values)


WORKER = {"name": "cpu", "replicas": 1, "tiers": ["free"], "slots": 1, "graceSeconds": 10}
WORKER |= {"resources": {}, "runsVolumeSizeLimit": "1Gi", "pdb": {"enabled": False}}


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"workers": [WORKER | {"replicas": -1}]}, "/workers/0/replicas"),
        ({"workers": [WORKER | {"tiers": ["GPU large"]}]}, "/workers/0/tiers/0"),
        ({"api": {"replica": 2}}, "/api"),
        ({"database": {"networkPolicy": {"ipBlocks": ["10.0.0.0"]}}}, "/database/networkPolicy/ipBlocks/0"),
        ({"database": {"url": "mysql://db/orchestrator"}}, "/database/url"),
        ({"migration": {"revision": "head; rm -rf /"}}, "/migration/revision"),
        ({"runs": {"uid": -5}}, "/runs/uid"),
        # the JupyterHub chart's own schema guards its part
        ({"jupyterhub": {"proxy": {"https": {"type": "bogus"}}}}, "/proxy/https/type"),
    ],
)
def test_values_schema_refuses_a_bad_value_and_names_its_path(chart_dir: Path, values: Doc, path: str) -> None:
    with helm.Chart.load(chart_dir) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert f"'{path}'" in str(refused.value)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"database": {"networkPolicy": {"ipBlocks": ["203.0.113.0/24"]}}}, "not a private address range"),
        ({"jupyterhub": {"singleuser": {"networkPolicy": {"egressAllowRules": {"privateIPs": True}}}}}, "privateIPs"),
        ({"jupyterhub": {"singleuser": {"networkPolicy": {"enabled": False}}}}, "singleuser.networkPolicy.enabled"),
        ({"fullnameOverride": "orch"}, "set it to http://orch-api:8888"),
        ({"database": {"existingSecret": ""}}, "database.url is empty"),
        ({"workers": [WORKER, WORKER | {"name": "gpu"}]}, 'tier "free" is served by both "cpu" and "gpu"'),
        ({"workers": [WORKER, WORKER | {"name": "any", "tiers": []}]}, "would take every tier's runs"),
        ({"runs": {"uid": 1000}}, "must be neither 0 nor podSecurityContext.runAsUser"),
    ],
)
def test_chart_refuses_unsafe_or_broken_values(chart_dir: Path, values: Doc, reason: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render(chart_dir, values)
    assert reason in str(refused.value)


@pytest.mark.parametrize("version", [MIN_KUBE, NEWEST_KUBE])
@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_every_manifest_is_valid_kubernetes(rendered: dict[str, list[Doc]], values_name: str, version: str) -> None:
    docs = rendered[values_name]
    assert len(docs) > 25
    problems = [problem for doc in docs if (problem := schema_problem(doc, version))]
    assert problems == []


@pytest.mark.parametrize("version", [MIN_KUBE, NEWEST_KUBE])
@pytest.mark.parametrize("values_name", ["default", "production"])
def test_user_pods_of_every_profile_are_valid_kubernetes(
    spawned: dict[str, dict[str, Doc]], values_name: str, version: str
) -> None:
    pods = spawned[values_name]
    assert set(pods) == {"cpu-small", "cpu-large", "gpu"}
    problems = [problem for pod in pods.values() if (problem := schema_problem(pod, version))]
    assert problems == []


def test_prometheus_operator_resources(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["production"]
    monitor = one(docs, "ServiceMonitor", "orchestrator-api")["spec"]
    service = one(docs, "Service", "orchestrator-api")
    assert matches(monitor["selector"], service["metadata"]["labels"])
    [endpoint] = monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    from orchestrator_ext.handlers.metrics import MetricsHandler

    assert endpoint["path"] == "/services/orchestrator" + MetricsHandler.route
    # the metrics need a hub identity: a token z2jh generates for the orchestrator-metrics service
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] in one(docs, "Secret", credentials["name"])["data"]
    rules = one(docs, "PrometheusRule", "orchestrator")["spec"]["groups"][0]["rules"]
    assert {"OrchestratorAPIDown", "OrchestratorAPIErrors", "OrchestratorExecutionsBacklog"} <= {
        r["alert"] for r in rules
    }
    assert all(r["expr"] and r["labels"]["severity"] for r in rules)
    assert not find(rendered["default"], "ServiceMonitor")
    assert not find(rendered["default"], "PrometheusRule")


# ---- isolation: PostgreSQL is for the Orchestrator's pods only ----------------------------------------


def reachable(target: ipaddress.IPv4Network, cidr: str, excepts: list[str]) -> bool:
    """Whether some address of ``target`` is in ``cidr`` minus ``excepts`` (a NetworkPolicy ipBlock)."""
    block = ipaddress.ip_network(cidr)
    if not target.overlaps(block):
        return False
    remaining = [target if target.subnet_of(block) else block]  # type: ignore[arg-type]
    for excluded in map(ipaddress.ip_network, excepts):
        left = []
        for network in remaining:
            if not network.overlaps(excluded):
                left.append(network)
            elif not network.subnet_of(excluded):  # type: ignore[arg-type]
                left.extend(network.address_exclude(excluded))  # type: ignore[arg-type]
        remaining = left
    return bool(remaining)


def egress_reaching(policy: Doc, target: ipaddress.IPv4Network, port: int) -> list[Doc]:
    """The egress rules of a NetworkPolicy that admit some address of ``target`` on TCP ``port``."""
    admitting = []
    for rule in policy["spec"].get("egress", []):
        ports = rule.get("ports")
        if ports and not any(
            p.get("protocol", "TCP") == "TCP"
            and isinstance(p.get("port"), int)
            and p["port"] <= port <= p.get("endPort", p["port"])
            for p in ports
        ):
            continue
        peers = rule.get("to")
        if not peers or any(
            "ipBlock" in peer and reachable(target, peer["ipBlock"]["cidr"], peer["ipBlock"].get("except", []))
            for peer in peers
        ):
            admitting.append(rule)
    return admitting


def database_network(values_name: str) -> dict[str, Any]:
    """database.networkPolicy of a values set, over the chart's defaults."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["database"]["networkPolicy"]
    return defaults | VALUE_SETS[values_name].get("database", {}).get("networkPolicy", {})


def policies_for(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [p for p in find(docs, "NetworkPolicy") if matches(p["spec"]["podSelector"], labels)]


#: z2jh pods no NetworkPolicy restricts; they run the chart's own images (kube-scheduler, pause,
#: image pre-pullers), never users' code, and hold no database credentials
Z2JH_UNRESTRICTED = {
    "DaemonSet/continuous-image-puller",
    "DaemonSet/hook-image-puller",
    "Job/hook-image-awaiter",
    "StatefulSet/user-placeholder",
    "Deployment/user-scheduler",
}
#: the hub reaches the Kubernetes API on a private address (z2jh's default); it holds no database credentials
HUB = "Deployment/hub"


@pytest.mark.parametrize("values_name", ["default", "production", "in-cluster-database"])
def test_notebook_servers_cannot_reach_postgres(
    rendered: dict[str, list[Doc]], spawned: dict[str, dict[str, Doc]], values_name: str
) -> None:
    docs = rendered[values_name]
    database = database_network(values_name)
    for slug, pod in spawned.get(values_name, spawned["default"]).items():
        labels = pod["metadata"]["labels"]
        assert labels["component"] == "singleuser-server"
        assert labels.get(DB_CLIENT_LABEL[0]) is None, f"profile {slug} pods carry the database-client label"
        # the API's public URL (through the proxy) is all a notebook server is told: no database, no keys
        settings = {name for c in containers(pod) for name in env_of(c) if name.startswith("ORCHESTRATOR_")}
        assert settings <= {"ORCHESTRATOR_URL"}, slug
        notebook = next(c for c in containers(pod) if c["name"] == "notebook")
        assert env_of(notebook)["ORCHESTRATOR_URL"]["value"].endswith("/services/orchestrator/"), slug
        policies = policies_for(docs, labels)
        assert [p["metadata"]["name"] for p in policies] == ["singleuser"], slug
        assert "Egress" in policies[0]["spec"]["policyTypes"]
        for cidr in database["ipBlocks"]:
            admitting = egress_reaching(policies[0], ipaddress.ip_network(cidr), database["port"])
            assert admitting == [], f"profile {slug} servers may reach PostgreSQL at {cidr}: {admitting}"


@pytest.mark.parametrize("values_name", ["default", "production", "chart-made-secret"])
def test_only_the_orchestrator_pods_may_reach_an_external_postgres(
    rendered: dict[str, list[Doc]], spawned: dict[str, dict[str, Doc]], values_name: str
) -> None:
    docs = rendered[values_name]
    database = database_network(values_name)
    users = spawned.get(values_name, spawned["default"])
    pods = pods_of(docs) | {f"user/{slug}": pod for slug, pod in users.items()}
    reaching = set()
    for key, pod in pods.items():
        egress = [p for p in policies_for(docs, pod["metadata"]["labels"]) if "Egress" in p["spec"]["policyTypes"]]
        if not egress or any(
            egress_reaching(policy, ipaddress.ip_network(cidr), database["port"])
            for policy in egress
            for cidr in database["ipBlocks"]
        ):
            reaching.add(key)
    clients = {
        key
        for key, pod in ours(docs).items()
        if pod["metadata"]["labels"].get(DB_CLIENT_LABEL[0]) == DB_CLIENT_LABEL[1]
    }
    assert clients == {key for key in ours(docs) if key in reaching}
    assert clients >= {"Deployment/orchestrator-api", "Job/orchestrator-migrate", "Deployment/orchestrator-scheduler"}
    assert reaching - clients == {HUB} | (Z2JH_UNRESTRICTED & set(pods))
    # the internet-facing pods are kept away from it
    assert not reaching & {"Deployment/proxy", "Deployment/autohttps"}


def test_an_in_cluster_postgres_admits_the_orchestrator_pods_only(
    rendered: dict[str, list[Doc]], spawned: dict[str, dict[str, Doc]]
) -> None:
    docs = rendered["in-cluster-database"]
    guard = one(docs, "NetworkPolicy", "orchestrator-database")["spec"]
    assert guard["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "postgresql"}
    assert guard["policyTypes"] == ["Ingress"]
    [rule] = guard["ingress"]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]

    def admitted(labels: dict[str, str]) -> bool:
        return any(matches(peer["podSelector"], labels) for peer in rule["from"])

    clients = {key for key, pod in ours(docs).items() if admitted(pod["metadata"]["labels"])}
    assert clients == {
        "Deployment/orchestrator-api",
        "Deployment/orchestrator-scheduler",
        "Deployment/orchestrator-worker-cpu",
        "Deployment/orchestrator-worker-gpu",
        "Job/orchestrator-migrate",
    }
    others = {key: pod for key, pod in pods_of(docs).items() if key not in clients}
    others |= {f"user pod/{slug}": pod for slug, pod in spawned["default"].items()}
    assert [key for key, pod in others.items() if admitted(pod["metadata"]["labels"])] == []
    # and the egress of users' servers selects no database pod either
    singleuser = one(docs, "NetworkPolicy", "singleuser")["spec"]
    postgres_labels = {"app.kubernetes.io/name": "postgresql"}
    for egress in singleuser["egress"]:
        for peer in egress.get("to", []):
            assert "podSelector" not in peer or not matches(peer["podSelector"], postgres_labels)


def test_the_api_is_reached_through_the_proxy_and_reaches_the_hub(
    rendered: dict[str, list[Doc]], spawned: dict[str, dict[str, Doc]]
) -> None:
    docs = rendered["default"]
    api = ours(docs)["Deployment/orchestrator-api"]
    [policy] = [p for p in policies_for(docs, api["metadata"]["labels"])]
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    proxy = pods_of(docs)["Deployment/proxy"]["metadata"]["labels"]
    hub = pods_of(docs)["Deployment/hub"]["metadata"]["labels"]
    assert any(matches(peer.get("podSelector", {}), proxy) for peer in sources if "namespaceSelector" not in peer)
    for slug, pod in spawned["default"].items():
        labels = pod["metadata"]["labels"]
        assert not any(matches(p["podSelector"], labels) for p in sources if "podSelector" in p), slug
    # the hub's own NetworkPolicy admits the API to the hub API
    hub_policy = one(docs, "NetworkPolicy", "hub")["spec"]
    assert any(
        matches(peer["podSelector"], api["metadata"]["labels"])
        for rule in hub_policy["ingress"]
        for peer in rule.get("from", [])
        if "podSelector" in peer
    )
    assert any(
        matches(peer["podSelector"], hub)
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
        if "podSelector" in peer
    ), "the API cannot reach the hub API"


# ---- secrets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_secrets_come_from_secrets_never_from_plain_values(
    rendered: dict[str, list[Doc]], spawned: dict[str, dict[str, Doc]], values_name: str
) -> None:
    pods = pods_of(rendered[values_name]) | {f"user/{s}": p for s, p in spawned.get(values_name, {}).items()}
    for key, pod in pods.items():
        for container in containers(pod):
            for name, entry in env_of(container).items():
                value = str(entry.get("value", ""))
                assert "postgres" not in value, f"{key}: {name} holds a database URL"
                assert PASSWORD not in value, f"{key}: {name} holds a password"
                if name in SECRET_ENV and key.startswith(("Deployment/orchestrator", "Job/orchestrator")):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), f"{key}: {name} is not from a Secret"

    # only the migration job gets the owner's URL, only workers the runs' database
    def holders(variable: str) -> set[str]:
        return {
            key for key, pod in ours(rendered[values_name]).items() for c in containers(pod) if variable in env_of(c)
        }

    assert holders("ORCHESTRATOR_DATABASE_ADMIN_URL") == {"Job/orchestrator-migrate"}
    assert holders("ORCHESTRATOR_RUNS_DATABASE_URL") == {
        "Deployment/orchestrator-worker-cpu",
        "Deployment/orchestrator-worker-gpu",
    }


def test_credentials_given_as_values_land_in_the_chart_secret_only(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["chart-made-secret"]
    secret = one(docs, "Secret", "orchestrator-secrets")
    assert secret_data(secret) == {
        "database-url": VALUE_SETS["chart-made-secret"]["database"]["url"],
        "database-admin-url": VALUE_SETS["chart-made-secret"]["database"]["adminUrl"],
        "encryption-keys": KEY_RING,
        "runs-database-url": VALUE_SETS["chart-made-secret"]["database"]["runsUrl"],
    }
    # it must exist before the migration hook runs
    annotations = secret["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    job = one(docs, "Job", "orchestrator-migrate")["metadata"]["annotations"]
    assert int(annotations["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])
    # nowhere else: not in the hub's values, not in any ConfigMap, not in a pod
    for doc in docs:
        if doc is secret:
            continue
        text = json.dumps(doc) + "".join(secret_data(doc).values() if doc["kind"] == "Secret" else [])
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert PASSWORD not in text, where
        assert KEY_RING not in text, where


# ---- the hub registers the API as its service -------------------------------------------------------------


def test_the_hub_registers_the_api_as_a_service_users_may_access(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["default"]
    hub = hub_values(docs)["hub"]
    service = one(docs, "Service", "orchestrator-api")
    port = service["spec"]["ports"][0]["port"]
    assert hub["services"]["orchestrator"]["url"] == f"http://orchestrator-api:{port}"
    api = ours(docs)["Deployment/orchestrator-api"]
    env = env_of(api["spec"]["containers"][0])
    assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == "/services/orchestrator/"
    token = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["key"] == "hub.services.orchestrator.apiToken"
    assert token["key"] in one(docs, "Secret", token["name"])["data"]
    roles = hub["loadRoles"]
    assert "access:services!service=orchestrator" in roles["user"]["scopes"]
    assert "access:services!service=orchestrator" in roles["server"]["scopes"]
    for name, role in roles.items():
        for scope in role["scopes"]:
            scope_name, _, scope_filter = scope.partition("!")
            assert scope_name in jupyterhub_scopes.scope_definitions, f"role {name}: no scope {scope}"
            assert not scope_filter or scope_filter.split("=")[0] in {"user", "service", "server", "group"}
        assert set(role.get("services", [])) <= set(hub["services"]), name


def test_the_api_container_matches_the_extension(rendered: dict[str, list[Doc]]) -> None:
    from jupyter_server.serverapp import ServerApp

    from orchestrator_ext.app import OrchestratorApp
    from orchestrator_ext.handlers.base import API_PREFIX
    from orchestrator_ext.handlers.health import default_handlers

    docs = rendered["production"]
    container = ours(docs)["Deployment/orchestrator-api"]["spec"]["containers"][0]
    assert container["command"] == ["jupyter", "orchestrator"]
    [(_, health)] = default_handlers
    assert health.route == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == f"/services/orchestrator/{API_PREFIX}/health"
    assert "tcpSocket" in container["livenessProbe"]
    assert "tcpSocket" in container["startupProbe"]
    settings = json.loads(one(docs, "ConfigMap", "orchestrator-api")["data"]["jupyter_server_config.json"])
    for cls, traits in ((ServerApp, settings["ServerApp"]), (OrchestratorApp, settings["OrchestratorApp"])):
        assert set(traits) <= set(cls.class_traits(config=True)), cls.__name__
    assert settings["OrchestratorApp"] == {"run_engine": False, "migrate_on_start": False}
    assert settings["ServerApp"]["jpserver_extensions"]["jupyterhub"] is True
    # replicas share the cookie secret, so a hub login works on each
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(settings["ServerApp"]["cookie_secret_file"]).parent) in mounts


def test_every_process_argument_is_a_setting_of_the_code(rendered: dict[str, list[Doc]]) -> None:
    from traitlets.utils.importstring import import_item

    from orchestrator_ext.app import OrchestratorApp

    # a subcommand is its class or (imported when it runs) the class's import path
    subcommands = OrchestratorApp.subcommands.items()
    commands = {name: import_item(c) if isinstance(c, str) else c for name, (c, _) in subcommands}
    classes = {"OrchestratorApp": OrchestratorApp} | {command.__name__: command for command in commands.values()}
    for key, pod in ours(rendered["production"]).items():
        for container in containers(pod):
            assert container["command"][:2] == ["jupyter", "orchestrator"], key
            subcommand = container["command"][2] if len(container["command"]) > 2 else None
            assert subcommand is None or subcommand in OrchestratorApp.subcommands, key
            command_class = commands[subcommand] if subcommand else OrchestratorApp
            for option, value in worker_args(container).items():
                if "." not in option:
                    assert option in command_class.aliases, f"{key}: --{option}"
                    continue
                class_name, trait_name = option.split(".", 1)
                traits = classes[class_name].class_traits(config=True)
                assert trait_name in traits, f"{key}: --{option} is no setting"
                traits[trait_name].from_string(value)  # raises on a value of the wrong type


# ---- workers, GPUs and profiles -------------------------------------------------------------------------


def known_tiers() -> set[str]:
    """The resource tiers the migrations create."""
    tiers: set[str] = set()
    for path in sorted((ROOT / "orchestrator_ext/db/migrations/versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        tiers |= {row[0] for row in getattr(module, "TIERS", [])}
    assert tiers, "no TIERS found in the migrations"
    return tiers


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_worker_pools_split_the_tiers_and_gpu_workers_get_a_gpu(
    rendered: dict[str, list[Doc]], values_name: str
) -> None:
    pools = {key: pod for key, pod in ours(rendered[values_name]).items() if "-worker-" in key}
    assert set(pools) == {"Deployment/orchestrator-worker-cpu", "Deployment/orchestrator-worker-gpu"}
    tiers = {}
    for key, pod in pools.items():
        [container] = pod["spec"]["containers"]
        assert container["command"] == ["jupyter", "orchestrator", "worker"]
        tiers[key] = set(worker_args(container)["OrchestratorApp.worker_tiers"].split(","))
    cpu, gpu = tiers["Deployment/orchestrator-worker-cpu"], tiers["Deployment/orchestrator-worker-gpu"]
    assert not cpu & gpu
    assert cpu | gpu == known_tiers(), "some tier's runs would wait for a worker forever"
    assert gpu == {t for t in known_tiers() if t.startswith("gpu")}
    gpu_pod = pools["Deployment/orchestrator-worker-gpu"]["spec"]
    assert str(gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert gpu_pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod["tolerations"]
    cpu_pod = pools["Deployment/orchestrator-worker-cpu"]["spec"]
    assert "nvidia.com/gpu" not in cpu_pod["containers"][0]["resources"].get("limits", {})
    # a stopping worker's grace fits in the pod's termination grace period
    for pod in pools.values():
        grace = int(worker_args(pod["spec"]["containers"][0])["WorkerCommand.grace_seconds"])
        assert pod["spec"]["terminationGracePeriodSeconds"] > grace


def test_profiles_give_users_cpu_and_gpu_servers(spawned: dict[str, dict[str, Doc]]) -> None:
    pods = spawned["default"]
    for slug, pod in pods.items():
        [notebook] = pod["spec"]["containers"]
        limits = notebook["resources"]["limits"]
        assert ("nvidia.com/gpu" in limits) == (slug == "gpu"), slug
        assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    gpu = pods["gpu"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    tolerated = {(t["key"], t.get("value")) for t in gpu["tolerations"]}
    # the GPU toleration, and still z2jh's user-node ones
    assert {("nvidia.com/gpu", None), ("hub.jupyter.org/dedicated", "user")} <= tolerated
    large = pods["cpu-large"]["spec"]["containers"][0]["resources"]
    small = pods["cpu-small"]["spec"]["containers"][0]["resources"]
    assert float(large["limits"]["cpu"]) > float(small["limits"]["cpu"])


# ---- upgrades: the migration hook ------------------------------------------------------------------------


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(chart_dir: Path, rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["default"]
    job = one(docs, "Job", "orchestrator-migrate")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["jupyter", "orchestrator", "migrate"]
    assert container["args"] == ["--revision=head"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # its NetworkPolicy exists before it (hooks run by weight)
    policy = one(docs, "NetworkPolicy", "orchestrator-migrate")["metadata"]["annotations"]
    assert policy["helm.sh/hook"] == annotations["helm.sh/hook"]
    assert int(policy["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    # going back: the same job migrates down to the revision asked for
    downgrade = one(render(chart_dir, {"migration": {"revision": "0004"}}), "Job", "orchestrator-migrate")
    assert downgrade["spec"]["template"]["spec"]["containers"][0]["args"] == ["--revision=0004"]


# ---- production ------------------------------------------------------------------------------------------


def test_production_runs_replicated_behind_tls(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["production"]
    deployments = {d["metadata"]["name"]: d for d in find(docs, "Deployment")}
    assert deployments["orchestrator-api"]["spec"]["replicas"] >= 2
    assert deployments["orchestrator-scheduler"]["spec"]["replicas"] >= 2
    budgets = find(docs, "PodDisruptionBudget")
    for name in ("orchestrator-api", "orchestrator-scheduler", "orchestrator-worker-cpu", "orchestrator-worker-gpu"):
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        covering = [b["metadata"]["name"] for b in budgets if matches(b["spec"]["selector"], labels)]
        assert covering == [name], f"{name} is covered by {covering}"
    api_budget = one(docs, "PodDisruptionBudget", "orchestrator-api")["spec"]
    assert 1 <= api_budget["minAvailable"] < deployments["orchestrator-api"]["spec"]["replicas"]
    # TLS at the proxy (z2jh's autohttps with Let's Encrypt)
    assert "autohttps" in deployments
    public = one(docs, "Service", "proxy-public")["spec"]["ports"]
    assert 443 in {p["port"] for p in public}
    # an external PostgreSQL with a Secret of the operator's, reached at its own address only
    assert not find(docs, "Secret", "orchestrator-secrets")
    assert one(docs, "NetworkPolicy", "orchestrator-api")["spec"]["egress"][1]["to"] == [
        {"ipBlock": {"cidr": "10.20.0.5/32"}}
    ]
    for key, pod in ours(docs).items():
        for container in containers(pod):
            resources = container["resources"]
            assert resources["requests"]["cpu"], key
            assert resources["requests"]["memory"], key
            assert resources["limits"]["memory"], key


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_orchestrator_pods_run_locked_down(rendered: dict[str, list[Doc]], values_name: str) -> None:
    for key, pod in ours(rendered[values_name]).items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, key
        assert spec["securityContext"]["runAsUser"] != 0, key
        assert spec["automountServiceAccountToken"] is False, key
        volumes = {v["name"] for v in spec["volumes"]}
        for container in containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, key
            assert context["allowPrivilegeEscalation"] is False, key
            assert context["capabilities"]["drop"] == ["ALL"], key
            if "-worker-" not in key:  # the workers' own rights: test_worker_pods_run_code_under_a_uid_of_its_own
                assert "add" not in context["capabilities"], key
                assert context.get("runAsUser", spec["securityContext"]["runAsUser"]) != 0, key
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert {"/tmp", "/home/orchestrator"} <= set(mounts), f"{key}: nowhere to write"
            assert set(mounts.values()) <= volumes, key


#: what a worker needs to start each run as the runs' uid and to stop it (orchestrator_ext/engine/accounts.py)
RUN_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "KILL", "SETGID", "SETUID"}
#: the capabilities Pod Security's "baseline" level lets a container add
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"}
BASELINE_CAPABILITIES |= {"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


@pytest.mark.parametrize("values_name", list(VALUE_SETS))
def test_worker_pods_run_code_under_a_uid_of_its_own(rendered: dict[str, list[Doc]], values_name: str) -> None:
    """Runs drop to an unprivileged uid that is neither the worker's nor the API's; the worker gets only
    the capabilities that takes; the database's credentials are only in the worker's environment."""
    pools = {key: pod for key, pod in ours(rendered[values_name]).items() if "-worker-" in key}
    assert pools
    for key, pod in pools.items():
        spec = pod["spec"]
        [worker] = spec["containers"]
        context, env = worker["securityContext"], env_of(worker)
        run_uid = int(env["ORCHESTRATOR_RUN_ACCOUNTS"]["value"].removeprefix("uid:"))
        assert env["ORCHESTRATOR_RUN_ACCOUNTS"]["value"] == f"uid:{run_uid}", key
        assert run_uid not in {0, context["runAsUser"], spec["securityContext"]["runAsUser"]}, key
        # the worker: uid 0, every capability dropped but the five, no escalation, never privileged
        assert (context["runAsUser"], context["runAsNonRoot"]) == (0, False), key
        assert context["capabilities"]["drop"] == ["ALL"], key
        assert set(context["capabilities"]["add"]) == RUN_CAPABILITIES, key
        assert RUN_CAPABILITIES <= BASELINE_CAPABILITIES
        assert context["allowPrivilegeEscalation"] is False, key
        assert context["privileged"] is False, key
        assert not any(spec.get(host) for host in ("hostPID", "hostIPC", "hostNetwork")), key
        # the password: in the worker's environment, from the Secret; in no file, argument or other container
        for variable in ("ORCHESTRATOR_DATABASE_URL", "ORCHESTRATOR_ENCRYPTION_KEYS"):
            assert "secretKeyRef" in env[variable]["valueFrom"], key
        assert "envFrom" not in worker, key
        assert not spec.get("initContainers"), key
        assert [v["name"] for v in spec["volumes"] if {"secret", "projected", "hostPath"} & set(v)] == [], key
        assert not [arg for arg in worker.get("args", []) if "postgres" in arg or PASSWORD in arg], key
        assert spec["automountServiceAccountToken"] is False, key  # a token file runs could read


def iter_docs(rendered: dict[str, list[Doc]]) -> Iterator[Doc]:
    for docs in rendered.values():
        yield from docs


def test_every_orchestrator_resource_is_labelled_for_its_release(rendered: dict[str, list[Doc]]) -> None:
    for doc in iter_docs(rendered):
        labels = doc["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/name") == "orchestrator":
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["helm.sh/chart"] == f"orchestrator-{CHART_YAML['version']}"


# ---- the operator's guide ---------------------------------------------------------------------------------

GUIDE = ROOT / "docs/deploy/kubernetes.md"
#: the operator's own values file in the guide's commands: not in the repository
OPERATOR_FILES = {"my-site.yaml"}


def helm_commands(document: Path) -> list[list[str]]:
    """The arguments of every `helm install|upgrade` of the guide, as bash would pass them."""
    lines = []
    for block in re.findall(r"^```console\n(.*?)^```", document.read_text(), re.MULTILINE | re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if re.match(r"\$ helm (upgrade|install) ", command):
                lines.append(command.removeprefix("$ "))
    commands = []
    for line in lines:
        # bash expands the quoting and $(...) exactly as an operator's shell would; helm only prints its arguments
        done = subprocess.run(
            ["bash", "-c", f'helm() {{ printf "%s\\0" "$@"; }}\n{line}'],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        commands.append(done.stdout.split("\0")[:-1])
    return commands


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in update.items():
        result[key] = (
            merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


def test_the_guide_installs_and_upgrades_with_values_the_chart_accepts(chart_dir: Path) -> None:
    commands = helm_commands(GUIDE)
    assert len(commands) >= 5, "the guide's helm commands were not found"
    for arguments in commands:
        values: dict[str, Any] = {}
        options = iter(arguments[1:])
        for option in options:
            if option in {"--values", "-f"}:
                name = next(options)
                if name not in OPERATOR_FILES:
                    values = merged(values, yaml.safe_load((ROOT / name).read_text()))
            elif option == "--set":
                values = merged(values, helm.parse_set_string(next(options)))
            elif option in {"--namespace", "-n", "--timeout"}:
                assert next(options)
        with helm.Chart.load(chart_dir) as chart:
            chart.validate_schema(values)
        assert render(chart_dir, values), arguments
