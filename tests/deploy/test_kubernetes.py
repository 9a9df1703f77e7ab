"""deploy/kubernetes and the Dockerfile, checked on paper: no cluster and no Docker engine here.

The kustomization is built by a small loader below that does what kustomize does
for the few features the kustomization uses (resources, namespace, images,
strategic-merge patches by kind and name), and refuses any other. Where a
kustomize binary is on PATH (kubectl ships one) the two outputs must agree.
Every built manifest is validated against the Kubernetes API schemas
(kubernetes-validate, strict: unknown fields are errors).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE = REPO_ROOT / "deploy" / "kubernetes"
BASE, OVERLAY = KUBE / "base", KUBE / "overlays" / "example"
# The oldest Kubernetes the manifests claim to support, and the newest the schemas know.
SCHEMA_VERSIONS = ["1.29.0", "1.37.0"]
SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}


# --- the loader ------------------------------------------------------------------------


def _strategic_merge(target: dict, patch: dict) -> None:
    """Maps merge, null deletes, lists of named items (containers, env, volumes) merge by
    name, any other list is replaced: the Kubernetes merge keys for what the overlay patches."""
    for key, value in patch.items():
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            _strategic_merge(current, value)
        elif (isinstance(value, list) and isinstance(current, list)
              and all(isinstance(i, dict) and "name" in i for i in [*value, *current])):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    _strategic_merge(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get(
        "spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def build(directory: Path) -> list[dict]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: the test's loader does not implement {sorted(unsupported)}"
    docs: list[dict] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs += build(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"only patches by file are supported: {patch}"
        for change in yaml.safe_load_all((directory / patch["path"]).read_text()):
            targets = [d for d in docs if (d["kind"], d["metadata"]["name"])
                       == (change["kind"], change["metadata"]["name"])]
            assert len(targets) == 1, f"patch {patch['path']} matches {len(targets)} resources"
            _strategic_merge(targets[0], change)
    for image in kustomization.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name = re.split(r"[:@]", container["image"].rsplit("/", 1)[-1])[0]
                prefix = container["image"].rsplit("/", 1)[0] + "/" if "/" in container["image"] else ""
                if prefix + name == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in kustomization:
        for doc in docs:
            doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs


@pytest.fixture(scope="module", params=["base", "overlay"])
def manifests(request) -> list[dict]:
    return build(BASE if request.param == "base" else OVERLAY)


def named(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# --- the checks --------------------------------------------------------------------------


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(manifests, version):
    import kubernetes_validate

    errors = []
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def test_every_pod_has_resources_and_runs_as_a_non_root_user(manifests):
    for doc in manifests:
        for container in _containers(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
        if doc["kind"] in ("Deployment", "Job"):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_deployments_select_their_own_pods_and_services_and_ingress_point_at_them(manifests):
    deployments = named(manifests, "Deployment")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    services = named(manifests, "Service")
    for name, service in services.items():
        matches = [d for d in deployments.values()
                   if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        ports = {p["name"] for c in _containers(matches[0]) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    for name, ingress in named(manifests, "Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        assert ingress["spec"]["tls"], "TLS ends at the ingress"


def test_the_web_answers_probes_on_healthz_and_readyz_and_keeps_websockets_open(manifests):
    web = named(manifests, "Deployment")["waplatform-web"]
    container = _containers(web)[0]
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        # ALLOWED_HOSTS refuses the pod IP the kubelet would otherwise send as Host.
        host = {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}.get("Host")
        config = named(manifests, "ConfigMap")["waplatform-config"]["data"]
        assert host in config["ALLOWED_HOSTS"].split(","), probe
    annotations = named(manifests, "Ingress")["waplatform-web"]["metadata"]["annotations"]
    # Longer than daphne's 20 s WebSocket ping, so an idle inbox is not cut by the ingress.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 20


def test_every_queue_has_a_worker_deployment_scaled_on_its_own_queue_length(manifests, settings):
    deployments, autoscalers = named(manifests, "Deployment"), named(manifests, "HorizontalPodAutoscaler")
    for queue in settings.QUEUE_NAMES:
        name = f"waplatform-worker-{queue}"
        command = _containers(deployments[name])[0]["command"]
        assert command[:4] == ["python", "manage.py", "run_worker_pool", queue], command
        hpa = autoscalers[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        (metric,) = hpa["metrics"]
        assert metric["external"]["metric"] == {"name": "wap_queue_depth", "selector": {"matchLabels": {"queue": queue}}}
        # Warm shutdown: a worker gets past rq's job timeout to finish its job.
        grace = deployments[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > settings.RQ_QUEUES[queue]["DEFAULT_TIMEOUT"]
    assert len(autoscalers) == len(settings.QUEUE_NAMES)


@pytest.mark.integration
def test_the_metric_the_autoscalers_use_is_exported_by_the_platform(db):
    from operations import metrics
    from waplatform.queues import get_queue

    get_queue("webhooks").enqueue("waplatform.jobs.heartbeat")
    exported = metrics.render().decode()

    assert re.search(r'^wap_queue_depth\{queue="webhooks"\} 1\.0$', exported, re.M), exported[:2000]


def test_the_scheduler_runs_twice_over_and_migrations_run_as_a_job(manifests):
    scheduler = named(manifests, "Deployment")["waplatform-scheduler"]
    assert scheduler["spec"]["replicas"] == 2
    assert _containers(scheduler)[0]["command"] == ["python", "manage.py", "run_scheduler", "waplatform.cron"]
    (job,) = named(manifests, "Job").values()
    assert _containers(job)[0]["command"][:3] == ["python", "manage.py", "migrate"]


def test_config_names_only_settings_the_platform_reads_and_the_secret_only_placeholders(manifests):
    settings_source = (REPO_ROOT / "waplatform" / "settings.py").read_text()
    for doc in manifests:
        data = doc.get("data", {}) if doc["kind"] == "ConfigMap" else doc.get("stringData", {})
        for key in data:
            assert f'"{key}"' in settings_source, f"{doc['metadata']['name']}: {key} is read by nothing"
        if doc["kind"] == "Secret":
            assert all("REPLACE-ME" in value for value in data.values()), "the Secret holds a real-looking value"
        for container in _containers(doc):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert ref["name"] in named(manifests, kind), ref


def test_the_overlay_sets_namespace_image_and_host():
    docs = build(OVERLAY)
    assert {d["metadata"].get("namespace") for d in docs} == {"waplatform"}
    images = {c["image"] for d in docs for c in _containers(d)}
    assert images == {"registry.example.com/waplatform:2026.12.0"}
    assert named(docs, "Deployment")["waplatform-web"]["spec"]["replicas"] == 3
    assert named(docs, "Ingress")["waplatform-web"]["spec"]["rules"][0]["host"] == "wa.example.org"
    # The patch changed the request, not the rest of the container.
    web = _containers(named(docs, "Deployment")["waplatform-web"])[0]
    assert web["resources"]["requests"]["cpu"] == "500m" and web["resources"]["limits"]["memory"] == "768Mi"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_the_loader_agrees_with_kustomize_where_kustomize_is_installed(directory):
    command = _kustomize_command()
    if command is None:
        pytest.skip("no kustomize binary on PATH (not packaged for apt, PyPI or npm): the loader's output stands alone")
    result = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    def key(doc):
        return (doc["kind"], doc["metadata"]["name"])

    theirs = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=key)
    assert sorted(build(directory), key=key) == theirs


# --- the Dockerfile -----------------------------------------------------------------------


def test_the_dockerfile_parses_and_builds_a_non_root_daphne_image():
    import dockerfile

    instructions = dockerfile.parse_file(str(REPO_ROOT / "Dockerfile"))
    by_cmd: dict[str, list] = {}
    for instruction in instructions:
        by_cmd.setdefault(instruction.cmd, []).append(instruction)

    assert by_cmd["FROM"][0].value[0] == "python:3.11-slim"
    runs = " ".join(i.value[0] for i in by_cmd["RUN"])
    assert "pip install -r requirements.txt" in runs and "collectstatic --noinput" in runs
    user = by_cmd["USER"][-1].value[0].split(":")[0]
    assert user not in ("root", "0"), user
    assert instructions.index(by_cmd["USER"][-1]) > instructions.index(by_cmd["RUN"][-1])
    assert by_cmd["ENTRYPOINT"][-1].json and by_cmd["ENTRYPOINT"][-1].value == ("daphne",)
    assert "waplatform.asgi:application" in by_cmd["CMD"][-1].value
    # The uid the manifests run as is the image's user.
    assert user == "10001"
    for instruction in by_cmd["COPY"]:
        for source in instruction.value[:-1]:
            assert source == "." or (REPO_ROOT / source).exists(), source


def test_the_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "var", ".env", "**/node_modules"} <= ignored
    assert not ({"requirements.txt", "manage.py", "waplatform", "templates"} & ignored)


@pytest.mark.integration
def test_the_images_collectstatic_step_needs_no_database_or_redis(tmp_path):
    import dockerfile

    env_instructions = [i for i in dockerfile.parse_file(str(REPO_ROOT / "Dockerfile")) if i.cmd == "ENV"]
    image_env = {}
    for instruction in env_instructions:
        pairs = list(instruction.value)
        image_env.update(zip(pairs[::2], pairs[1::2]))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(image_env)
    # The build has neither: a Redis port nobody listens on, the var dir in tmp.
    env.update(STATIC_ROOT=str(tmp_path / "static"), WAP_VAR_DIR=str(tmp_path / "var"),
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "var" / "prometheus"),
               REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="collectstatic-only")
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "static" / "admin").is_dir()
