"""docker/: what can be checked without a Docker engine or a cluster. Every variable the compose
file and the Kubernetes manifests set is one the README documents, and the gateway accepts
their values; the probes and the image's health check ask for paths the actuator serves; the
rollout timings leave no request behind; the route files load; and kubectl accepts the
manifests (``apply --dry-run=client --validate=false``, against a stand-in API server that
only answers discovery: kubectl needs one even for a client-side dry run)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from gateway.plugins import Factories
from gateway.routing.validate import validate_file
from gateway.settings import Settings, load_settings
from tests.conftest import MakeGateway
from tests.support.upstream import serve

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
README = (ROOT / "README.md").read_text()
KUBECTL = shutil.which("kubectl")


def _documented() -> set[str]:
    """Every variable name the README writes as code (`NAME`), with `A_[B_]C` as both forms."""
    names: set[str] = set()
    for span in re.findall(r"`([A-Z][A-Z0-9_\[\]]*)`", README):
        names.add(re.sub(r"\[([A-Z0-9_]+)\]", r"\1", span))
        names.add(re.sub(r"\[[A-Z0-9_]+\]", "", span))
    return names


DOCUMENTED = _documented()


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def _manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def _kind(kind: str) -> dict[str, Any]:
    [found] = [d for d in _manifests() if d["kind"] == kind]
    return found


def _container() -> dict[str, Any]:
    [container] = _kind("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _k8s_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container()["env"] if "value" in e}


def _compose_env() -> Iterator[tuple[str, str, str]]:
    for service, definition in _compose()["services"].items():
        for name, value in (definition.get("environment") or {}).items():
            yield service, name, str(value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No GATEWAY_*/CONSUL_*/OTEL_* of the test's own environment in the settings read."""
    for name in list(os.environ):
        if name.startswith(("GATEWAY_", "CONSUL_", "OTEL_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_compose_sets_only_documented_variables() -> None:
    undocumented = [(s, n) for s, n, _v in _compose_env() if n not in DOCUMENTED]
    assert undocumented == []


def test_k8s_sets_only_documented_variables() -> None:
    names = [e["name"] for e in _container()["env"]]
    assert names
    assert [n for n in names if n not in DOCUMENTED] == []


@pytest.mark.parametrize("service", ["gateway", "legacy-sidecar"])
def test_compose_meshgate_settings_load(service: str, clean_env: pytest.MonkeyPatch) -> None:
    for name, value in _compose()["services"][service]["environment"].items():
        clean_env.setenv(name, str(value))
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.discovery_mode == "consul"


def test_compose_gateway_route_file_loads() -> None:
    gateway = _compose()["services"]["gateway"]
    config = gateway["environment"]["GATEWAY_CONFIG"]
    [mount] = [v for v in gateway["volumes"] if v.split(":")[1] == config]
    source = DOCKER / mount.split(":")[0]
    found = Factories.builtin()
    _config, routes = validate_file(str(source), found.predicates, found.filters)
    assert {r.id for r in routes} == {"orders-beta", "orders", "legacy"}
    assert "RequestRateLimiter" in source.read_text()
    assert "GATEWAY_REDIS_URL" in gateway["environment"]


def test_k8s_route_file_loads(tmp_path: Path) -> None:
    config_map = _kind("ConfigMap")
    mount = next(m for m in _container()["volumeMounts"] if m["name"] == "routes")
    file = Path(_k8s_env()["GATEWAY_CONFIG"])
    assert str(file.parent) == mount["mountPath"]
    path = tmp_path / file.name
    path.write_text(config_map["data"][file.name])
    found = Factories.builtin()
    _config, routes = validate_file(str(path), found.predicates, found.filters)
    assert routes


def test_k8s_rollout_timings(clean_env: pytest.MonkeyPatch) -> None:
    """preStop outlasts GATEWAY_DEREGISTER_GRACE, and the grace period covers preStop, the
    gateway's own wait and its drain, so the kubelet's SIGKILL never cuts a request."""
    for name, value in _k8s_env().items():
        clean_env.setenv(name, value)
    settings = load_settings()
    pod = _kind("Deployment")["spec"]["template"]["spec"]
    command = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop > settings.deregister_grace
    needed = pre_stop + settings.deregister_grace + settings.shutdown_timeout
    assert pod["terminationGracePeriodSeconds"] > needed


def test_k8s_deployment_shape() -> None:
    deployment = _kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container()
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    # The uid the image runs as (docker/Dockerfile's USER).
    user = re.search(r"^USER (\d+):(\d+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert user is not None
    assert str(pod["securityContext"]["runAsUser"]) == user[1]
    assert str(pod["securityContext"]["runAsGroup"]) == user[2]
    # The Service and the budget select the Deployment's pods; the Service sends to the
    # proxy port only.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _kind("Service")["spec"]["selector"] == labels
    assert _kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert [p["targetPort"] for p in _kind("Service")["spec"]["ports"]] == ["http"]
    defaults = {name: Settings.model_fields[name].default for name in ("port", "management_port")}
    assert ports == {"http": defaults["port"], "management": defaults["management_port"]}
    assert _k8s_env()["GATEWAY_MANAGEMENT_HOST"] == "0.0.0.0"


def _probe_paths() -> list[str]:
    container = _container()
    probes = [container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert all(p["httpGet"]["port"] == "management" for p in probes)
    healthcheck = re.search(r"/actuator/[a-z/]+", (DOCKER / "Dockerfile").read_text())
    assert healthcheck is not None
    return sorted({p["httpGet"]["path"] for p in probes} | {healthcheck[0]})


async def test_probe_paths_are_served_and_open(make_gateway: MakeGateway) -> None:
    """Each path answers 200 on the management port, and with a management token set still
    needs none (the README's promise for the two probes)."""
    paths = _probe_paths()
    assert paths == ["/actuator/health/liveness", "/actuator/health/readiness"]
    gateway = await make_gateway(None, management_token="s3cret")
    async with aiohttp.ClientSession() as session:
        for path in paths:
            async with session.get(f"{gateway.management_url}{path}") as resp:
                assert resp.status == 200, path
        async with session.get(f"{gateway.management_url}/actuator/health") as resp:
            assert resp.status == 401  # the token is really in force


# -- kubectl ------------------------------------------------------------------------------------
# The resources the manifests use, as an API server's discovery documents list them.
_RESOURCES = {
    "v1": [("configmaps", "ConfigMap"), ("services", "Service")],
    "apps/v1": [("deployments", "Deployment")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
}


def _discovery_app() -> web.Application:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]

    def resources(group_version: str) -> dict[str, Any]:
        listed = [
            {"name": n, "singularName": k.lower(), "namespaced": True, "kind": k, "verbs": verbs}
            for n, k in _RESOURCES[group_version]
        ]
        return {"kind": "APIResourceList", "groupVersion": group_version, "resources": listed}

    groups = [
        {
            "name": gv.split("/")[0],
            "versions": [{"groupVersion": gv, "version": "v1"}],
            "preferredVersion": {"groupVersion": gv, "version": "v1"},
        }
        for gv in _RESOURCES
        if "/" in gv
    ]
    documents = {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups},
        "/api/v1": resources("v1"),
        **{f"/apis/{gv}": resources(gv) for gv in _RESOURCES if "/" in gv},
    }

    async def answer(request: web.Request) -> web.Response:
        if request.path in documents:
            return web.json_response(documents[request.path])
        # No object exists: a dry-run apply is a dry-run create.
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
        return web.json_response({**status, "reason": "NotFound", "code": 404}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


@pytest.fixture
async def kube_api() -> AsyncIterator[str]:
    runner, port = await serve(_discovery_app())
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_kubectl_dry_run_accepts_the_manifests(kube_api: str, tmp_path: Path) -> None:
    if KUBECTL is None:
        pytest.skip("no kubectl on PATH: the manifests' kubectl dry run is skipped")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": kube_api}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "stand-in", "user": "nobody"}}],
        "current-context": "c",
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    command = [KUBECTL, "--kubeconfig", str(kubeconfig), "apply", "--dry-run=client"]
    command += ["--validate=false", "-f", str(K8S)]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    lines = sorted(out.decode().splitlines())
    assert lines == [
        "configmap/meshgate-routes created (dry run)",
        "deployment.apps/meshgate created (dry run)",
        "poddisruptionbudget.policy/meshgate created (dry run)",
        "service/meshgate created (dry run)",
    ]
