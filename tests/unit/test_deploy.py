"""The deployment files in deploy/ are valid, consistent with each other, and with the code.

Offline: Kubernetes objects are validated against the JSON schemas that the
kubernetes-validate package bundles (network access is refused while it runs), KEDA's
objects against a schema of the fields used here. Tools that may be absent (the docker
compose CLI, systemd-analyze, kubectl) are used when present; only those sub-checks skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import typer.main
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from dialer import metrics
from dialer.cli.main import app as dialer_app
from dialer.composition import check_provider_settings
from dialer.composition.queues import QUEUES as CELERY_QUEUES
from dialer.errors import SettingsError
from dialer.providers import elevenlabs, retell, sendgrid_events, twilio_voice, vapi
from dialer.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
SYSTEMD = DEPLOY / "systemd"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
# The oldest Kubernetes minor we claim to support, and the newest the schemas know.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
DIALER_IMAGE = "campaign-dialer"
SETTING_NAME = re.compile(r"\bDIALER_[A-Z0-9_]*[A-Z0-9]_?")
# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


QUEUES = CELERY_QUEUES  # the one list tasks/app.py declares its queues from
APP_SERVICES = ("api", "worker", "worker-dispatch", "beat", "flower")
LONG_RUNNING = (*APP_SERVICES, "postgres", "redis", "sandbox")


# ---------------------------------------------------------------- helpers


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"})


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def _k8s_objects() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every Kubernetes object under deploy/k8s (kustomization files excluded)."""
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found.extend((path, doc) for doc in _documents(path))
    return tuple(found)


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _k8s_objects() if doc["kind"] == kind}


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_pod_spec(workload)["containers"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@cache
def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _services() -> dict[str, dict[str, Any]]:
    return dict(_compose()["services"])


def _strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _dialer_command_exists(argv: list[str]) -> bool:
    """Whether ``dialer ARGV...`` names a real command (groups followed to their leaves)."""
    command: click.Command = typer.main.get_command(dialer_app)
    for word in argv:
        if word.startswith("-"):
            break
        if not isinstance(command, click.Group):
            break
        sub = command.commands.get(word)
        if sub is None:
            return False
        command = sub
    return not isinstance(command, click.Group)


def _probe_runs(argv: list[str], command: str) -> bool:
    """``argv`` runs the dialer probe ``command``, in its cheap module form or through `dialer`."""
    if argv[:3] == ["python", "-m", "dialer.cli.ops"]:
        rest = argv[3:]
    elif argv[:1] == ["dialer"]:
        rest = argv[1:]
    else:
        return False
    return rest[:1] == [command] and _dialer_command_exists(rest)


def _parse_unit(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment of a systemd unit, repeats kept."""
    entries, section = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def _unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in _parse_unit(path) if s == section and k == key]


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _settings_from_strings(values: dict[str, str]) -> Settings:
    """Validate DIALER_* string values as a process's start-up would (settings, then the
    provider entry's checks: its name, its own settings, the secrets it uses)."""
    fields = {k.removeprefix("DIALER_").lower(): v for k, v in values.items()}
    settings = load_settings(**fields)
    check_provider_settings(settings)
    return settings


def _settings_once_secrets_are_replaced(values: dict[str, str]) -> Settings:
    """An example with a real provider stops as it is (its "change-me" secrets are
    public) and loads once each provider secret is replaced."""
    weak = (
        "DIALER_PROVIDER_API_KEY",
        "DIALER_WEBHOOK_SECRET",
        "DIALER_WHATSAPP_TOKEN",
        "DIALER_WHATSAPP_APP_SECRET",
        "DIALER_WHATSAPP_VERIFY_TOKEN",
    )
    with pytest.raises(SettingsError) as refused:
        _settings_from_strings(values)
    assert all(name in str(refused.value) for name in weak)
    own = {name: f"{name.lower()}-of-your-own" for name in weak}
    return _settings_from_strings({**values, **own})


def _resolve_compose(value: str) -> str:
    """A compose value with defaults applied and required variables given a placeholder."""

    def one(match: re.Match[str]) -> str:
        op, arg = match.group("op"), match.group("arg") or ""
        return arg if op in {"-", ":-"} else "change-me"

    return INTERPOLATION.sub(one, value)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a network connection (schemas must come from disk)."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---------------------------------------------------------------- every YAML file


@pytest.mark.parametrize("path", _yaml_files(), ids=_relative)
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{_relative(path)} is empty"
    assert all(isinstance(doc, dict) for doc in documents)


def test_the_deploy_folder_has_every_kind_of_file() -> None:
    expected = [
        DOCKERFILE,
        COMPOSE,
        DEPLOY / ".env.example",
        K8S / "kustomization.yaml",
        K8S / "migrate" / "kustomization.yaml",
        K8S / "secret.example.yaml",
        SYSTEMD / "dialer.env.example",
        ALERTS,
    ]
    assert [p for p in expected if not p.is_file()] == []


# ---------------------------------------------------------------- Kubernetes

KEDA_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
# KEDA trigger metadata is map[string]string: a bare YAML number is rejected by the CRD.
REDIS_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "redis"},
        "name": {"type": "string"},
        "metadata": {
            "type": "object",
            "required": ["listName", "listLength"],
            "anyOf": [{"required": ["address"]}, {"required": ["host", "port"]}],
            "additionalProperties": False,
            "properties": {
                "address": {"type": "string", "pattern": r"^[A-Za-z0-9.-]+:[0-9]+$"},
                "host": {"type": "string"},
                "port": {"type": "string", "pattern": r"^[0-9]+$"},
                "databaseIndex": {"type": "string", "pattern": r"^[0-9]+$"},
                "listName": {"type": "string", "minLength": 1},
                "listLength": {"type": "string", "pattern": r"^[1-9][0-9]*$"},
                "activationListLength": {"type": "string", "pattern": r"^[0-9]+$"},
                "enableTLS": {"enum": ["true", "false"]},
            },
        },
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
            },
        },
    },
}
HPA_RULES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {"type": "array"},
    },
}
SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": KEDA_METADATA,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"enum": ["Deployment", "StatefulSet"]},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"scaleUp": HPA_RULES, "scaleDown": HPA_RULES},
                                },
                            },
                        },
                    },
                },
                "triggers": {"type": "array", "minItems": 1, "items": REDIS_TRIGGER},
            },
        },
    },
}
TRIGGER_AUTHENTICATION_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": KEDA_METADATA,
        "spec": {
            "type": "object",
            "required": ["secretTargetRef"],
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "additionalProperties": False,
                        "properties": {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                    },
                }
            },
        },
    },
}
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SCHEMA,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION_SCHEMA,
}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.usefixtures("no_network")
def test_kubernetes_objects_match_the_kubernetes_schemas(version: str) -> None:
    problems = []
    for path, doc in _k8s_objects():
        if (doc.get("apiVersion"), doc.get("kind")) in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{_relative(path)} {doc['kind']}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{_relative(path)}: {exc.message}")
    assert problems == []


def test_keda_objects_match_the_schema_of_the_fields_used() -> None:
    checked = 0
    for path, doc in _k8s_objects():
        schema = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is None:
            continue
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
        assert [f"{_relative(path)}: {list(e.path)}: {e.message}" for e in errors] == []
        checked += 1
    assert checked == 2


def test_the_keda_schema_rejects_what_keda_would() -> None:
    """The hand-written schema is strict enough to catch the usual mistakes."""
    scaled = _objects("ScaledObject")["dialer-worker-dispatch"]
    validator = jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA)
    assert validator.is_valid(scaled)
    numeric = yaml.safe_load(yaml.safe_dump(scaled))
    numeric["spec"]["triggers"][0]["metadata"]["listLength"] = 20
    misspelt = yaml.safe_load(yaml.safe_dump(scaled))
    misspelt["spec"]["maxReplicas"] = misspelt["spec"].pop("maxReplicaCount")
    assert not validator.is_valid(numeric)
    assert not validator.is_valid(misspelt)


def test_the_dispatch_workers_scale_on_the_dispatch_queue() -> None:
    scaled = _objects("ScaledObject")["dialer-worker-dispatch"]
    target = _objects("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]
    (trigger,) = scaled["spec"]["triggers"]
    queue = trigger["metadata"]["listName"]
    assert queue == "dispatch"
    assert queue in QUEUES  # Celery's Redis transport keys a queue's list by its name
    (container,) = _containers(target)
    assert container["args"] == ["worker", "--queues", queue]
    assert "replicas" not in target["spec"], "the autoscaler owns the dispatch replicas"
    assert 0 < scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"], (
        "at least one dispatch worker, so a first call does not wait for a pod to start"
    )


def test_keda_reads_the_redis_that_the_workers_use() -> None:
    scaled = _objects("ScaledObject")["dialer-worker-dispatch"]
    (trigger,) = scaled["spec"]["triggers"]
    secret = _objects("Secret")["dialer-secrets"]["stringData"]
    redis = make_url(secret["DIALER_REDIS_URL"])
    assert trigger["metadata"]["address"] == f"{redis.host}:{redis.port}"
    assert trigger["metadata"]["databaseIndex"] == str(redis.database or 0)
    auth = _objects("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    secrets = _objects("Secret")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_every_workload_selects_its_own_pods_and_is_covered() -> None:
    deployments = _objects("Deployment")
    assert set(deployments) == {
        "dialer-api",
        "dialer-worker",
        "dialer-worker-dispatch",
        "dialer-beat",
        "dialer-flower",
    }
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], labels), name
    for name, service in _objects("Service").items():
        matched = [
            d
            for d in deployments.values()
            if _selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(matched) == 1, f"Service {name} selects {len(matched)} Deployments"
        ports = {p["name"] for c in _containers(matched[0]) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_api_and_workers_have_a_disruption_budget() -> None:
    budgets = _objects("PodDisruptionBudget").values()
    for name in ("dialer-api", "dialer-worker", "dialer-worker-dispatch"):
        labels = _objects("Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), name


def test_beat_is_a_single_replica_recreated_never_rolled() -> None:
    beat = _objects("Deployment")["dialer-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _containers(beat)[0]["args"] == ["beat"]
    others = [n for n, d in _objects("Deployment").items() if _containers(d)[0]["args"] == ["beat"]]
    assert others == ["dialer-beat"]


def test_probes_ask_the_right_question() -> None:
    deployments = _objects("Deployment")
    (api,) = _containers(deployments["dialer-api"])
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name in ("dialer-worker", "dialer-worker-dispatch"):
        (worker,) = _containers(deployments[name])
        for probe in ("livenessProbe", "readinessProbe"):
            assert _probe_runs(worker[probe]["exec"]["command"], "worker-ping"), name
    (flower,) = _containers(deployments["dialer-flower"])
    assert flower["livenessProbe"]["httpGet"]["path"] == "/healthcheck"
    (beat,) = _containers(deployments["dialer-beat"])
    assert _probe_runs(beat["livenessProbe"]["exec"]["command"], "beat-check")


def test_the_worker_probe_command_runs() -> None:
    """The probe's module entry point exists and knows the command (without a broker)."""
    (worker,) = _containers(_objects("Deployment")["dialer-worker"])
    command = worker["livenessProbe"]["exec"]["command"]
    done = subprocess.run(
        [sys.executable, *command[1:4], "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--node" in done.stdout


def test_every_container_is_bounded_unprivileged_and_runs_a_real_command() -> None:
    workloads = [*_objects("Deployment").values(), *_objects("Job").values()]
    assert len(workloads) == 6
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["image"] == DIALER_IMAGE, name
            assert _dialer_command_exists(container["args"]), (name, container["args"])
            refs = [
                ref.get("configMapRef", ref.get("secretRef"))["name"]
                for ref in container["envFrom"]
            ]
            known = set(_objects("ConfigMap")) | set(_objects("Secret"))
            assert set(refs) <= known, name


def test_the_migration_job_upgrades_once_and_is_not_rolled_with_the_apps() -> None:
    job = _objects("Job")["dialer-migrate"]
    assert _containers(job)[0]["args"] == ["db", "upgrade"]
    assert _pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    main = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    migrate = yaml.safe_load((K8S / "migrate" / "kustomization.yaml").read_text())
    assert migrate["resources"] == ["job.yaml"]
    assert "migrate" not in " ".join(main["resources"])
    assert main["images"] == migrate["images"], "code and migrations ship the same image tag"
    assert {image["name"] for image in main["images"]} == {DIALER_IMAGE}


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(on_disk - {"secret.example.yaml"})
    assert len(listed) == len(set(listed))


def _tool_missing(reason: str) -> None:
    """Skip on a laptop without the tool; fail in CI, whose .ci/run installs it."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.mark.parametrize("folder", [K8S, K8S / "migrate"], ids=_relative)
def test_kubectl_kustomize_builds(folder: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _tool_missing("kubectl is not installed: kustomize build not checked")
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    built = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert all(doc["metadata"].get("namespace", "dialer") == "dialer" for doc in built)
    images = {
        c["image"]
        for doc in built
        if doc["kind"] in {"Deployment", "Job"}
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{DIALER_IMAGE}:0.1.0"}


# ---------------------------------------------------------------- Docker Compose


def test_compose_has_every_service_and_sandbox_only_in_its_profile() -> None:
    services = _services()
    assert set(services) == {"postgres", "redis", "migrate", *APP_SERVICES, "sandbox"}
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == {"sandbox"}
    assert services["sandbox"]["profiles"] == ["sandbox"]


def test_compose_runs_migrations_once_before_every_app_process() -> None:
    services = _services()
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert _dialer_command_exists(services[name]["command"]), name


def test_compose_beat_is_exactly_one() -> None:
    beat = _services()["beat"]
    assert beat["command"] == ["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert [n for n, s in _services().items() if s.get("command") == ["beat"]] == ["beat"]


def test_compose_long_running_services_have_health_checks_and_restart_policies() -> None:
    services = _services()
    for name in LONG_RUNNING:
        service = services[name]
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}, name
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        assert len(test) > 1, name
    for name, probe in (("worker", "worker-ping"), ("worker-dispatch", "worker-ping")):
        test = services[name]["healthcheck"]["test"]
        assert _probe_runs(test[1:], probe), test
    assert _probe_runs(services["beat"]["healthcheck"]["test"][1:], "beat-check")


def test_compose_secrets_are_required_variables_listed_in_the_env_example() -> None:
    secret_fields = {
        f"DIALER_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())
    }
    for name, service in _services().items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if key in secret_fields or "PASSWORD" in key:
                match = INTERPOLATION.fullmatch(str(value))
                assert match, f"{name}: {key}={value}"
                assert match.group("op") in {":?", "?"}, f"{name}: {key}={value}"
    required = {
        m.group("name")
        for value in _strings(_compose())
        for m in INTERPOLATION.finditer(value)
        if m.group("op") in {":?", "?"}
    }
    assert required, "compose requires its secrets"
    assert required <= set(_env_file(DEPLOY / ".env.example"))


def test_compose_environment_is_valid_settings() -> None:
    for name in (*APP_SERVICES, "migrate", "sandbox"):
        environment = _services()[name]["environment"]
        values = {k: _resolve_compose(str(v)) for k, v in environment.items()}
        settings = _settings_from_strings(values)
        assert settings.database_url, name
        assert settings.redis_url, name


# ---------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = _dockerfile_instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    stages = [rest for k, rest in instructions if k == "FROM"]
    assert len(stages) >= 2
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)
    assert any(k == "COPY" and rest.startswith("--from=build") for k, rest in _final_stage()), (
        "the runtime stage copies the built virtualenv"
    )


def test_dockerfile_runs_as_an_unprivileged_user() -> None:
    users = [rest for k, rest in _final_stage() if k == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_installs_the_lock_without_dev_extras() -> None:
    runs = " ".join(rest for k, rest in _dockerfile_instructions() if k == "RUN")
    installs = re.findall(r"pip install[^&;]*", runs)
    assert installs, "the project is installed with pip"
    for install in installs:
        assert "-c constraints.txt" in install, install
        assert "[" not in install, install
        assert "dev" not in install, install
    copies = " ".join(rest for k, rest in _dockerfile_instructions() if k == "COPY")
    assert "constraints.txt" in copies


def test_dockerfile_copies_every_package_and_sets_entrypoint_and_healthcheck() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    include = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert include is not None
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",")}
    copied = {rest.split()[0] for k, rest in _dockerfile_instructions() if k == "COPY"}
    assert packages <= copied
    final = dict(_final_stage())
    assert final["ENTRYPOINT"] == '["dialer"]'
    assert "/healthz" in final["HEALTHCHECK"]


# ---------------------------------------------------------------- systemd

UNITS = sorted(SYSTEMD.glob("*.service"))


def test_systemd_has_a_unit_per_process() -> None:
    assert {p.stem for p in UNITS} == {
        "dialer-api",
        "dialer-worker",
        "dialer-worker-dispatch",
        "dialer-beat",
        "dialer-flower",
        "dialer-migrate",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_unit_has_the_required_keys(unit: Path) -> None:
    def one(section: str, key: str) -> str:
        values = _unit_values(unit, section, key)
        assert values, f"{unit.name}: [{section}] {key} missing"
        return values[-1]

    assert one("Unit", "Description")
    assert one("Service", "User") not in {"root", "0"}
    assert "/etc/dialer/dialer.env" in _unit_values(unit, "Service", "EnvironmentFile")
    assert one("Install", "WantedBy") == "dialer.target"
    argv = one("Service", "ExecStart").split()
    assert argv[0].startswith("/opt/dialer/venv/bin/")
    if argv[0].endswith("/dialer"):
        assert _dialer_command_exists(argv[1:]), argv
    if unit.stem == "dialer-migrate":
        assert one("Service", "Type") == "oneshot"
        assert argv[1:] == ["db", "upgrade"]
    else:
        assert one("Service", "Restart") in {"always", "on-failure"}
        assert "dialer-migrate.service" in one("Unit", "Requires")
        assert "dialer-migrate.service" in one("Unit", "After")


def test_systemd_workers_shut_down_warm_with_distinct_node_names() -> None:
    nodes = set()
    for name in ("dialer-worker", "dialer-worker-dispatch"):
        unit = SYSTEMD / f"{name}.service"
        assert _unit_values(unit, "Service", "KillMode") == ["mixed"]
        grace = int(_unit_values(unit, "Service", "TimeoutStopSec")[0])
        assert grace > Settings.model_fields["task_time_limit_seconds"].default
        argv = _unit_values(unit, "Service", "ExecStart")[0].split()
        nodes.add(argv[argv.index("--hostname") + 1] if "--hostname" in argv else "celery@%h")
    assert len(nodes) == 2


def test_systemd_flower_alone_reads_the_flower_password() -> None:
    for unit in UNITS:
        reads = "/etc/dialer/flower.env" in _unit_values(unit, "Service", "EnvironmentFile")
        assert reads == (unit.stem == "dialer-flower"), unit.name


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        _tool_missing("systemd-analyze is not installed: units checked by parsing only")
    # verify insists that ExecStart's program exists: point the units at this venv.
    venv_bin = Path(sys.executable).parent
    names = [*(p.name for p in UNITS), "dialer.target"]
    for name in names:
        text = (SYSTEMD / name).read_text().replace("/opt/dialer/venv/bin", str(venv_bin))
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    # Unknown keys and bad values are only warnings with exit code 0: fail on any line
    # that names one of our units.
    complaints = [line for line in output.splitlines() if any(n in line for n in names)]
    assert done.returncode == 0, output
    assert complaints == []


# ---------------------------------------------------------------- settings drift


def _deploy_texts() -> Iterator[tuple[Path, str]]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            yield path, path.read_text()
    yield OPERATIONS, OPERATIONS.read_text()


def test_every_dialer_variable_in_deploy_and_the_guide_is_a_setting() -> None:
    fields = {f"DIALER_{name.upper()}" for name in Settings.model_fields}
    # The hosted voice providers' own settings models (docs/OPERATIONS.md lists them too).
    for model in (
        vapi.Settings,
        retell.Settings,
        twilio_voice.Settings,
        elevenlabs.Settings,
    ):
        prefix = str(model.model_config["env_prefix"])
        fields |= {f"{prefix}{name}".upper() for name in model.model_fields}
    # The e-mail channel's own settings: the registry gives them the channel's prefix.
    for model, prefix in ((sendgrid_events.EmailEventSettings, "DIALER_EMAIL_"),):
        fields |= {f"{prefix}{name}".upper() for name in model.model_fields}
    unknown = set()
    seen = 0
    for path, text in _deploy_texts():
        for name in SETTING_NAME.findall(text):
            seen += 1
            known = (
                any(f.startswith(name) for f in fields) if name.endswith("_") else name in fields
            )
            if not known:
                unknown.add(f"{_relative(path)}: {name}")
    assert seen > 50
    assert sorted(unknown) == []


def test_kubernetes_settings_examples_are_valid_settings() -> None:
    config = _objects("ConfigMap")["dialer-config"]["data"]
    secrets = _objects("Secret")
    values = {**config, **secrets["dialer-secrets"]["stringData"]}
    values.update(secrets["dialer-flower"]["stringData"])
    settings = _settings_once_secrets_are_replaced(values)
    assert settings.provider == "http"
    assert settings.api_host == "0.0.0.0"


def test_container_ports_are_the_configured_ports() -> None:
    config = _objects("ConfigMap")["dialer-config"]["data"]
    deployments = _objects("Deployment")
    for deployment, settings in (
        ("dialer-api", ["DIALER_API_PORT", "DIALER_API_METRICS_PORT"]),
        ("dialer-flower", ["DIALER_FLOWER_PORT"]),
        ("dialer-worker", ["DIALER_WORKER_METRICS_PORT"]),
        ("dialer-worker-dispatch", ["DIALER_WORKER_METRICS_PORT"]),
    ):
        (container,) = _containers(deployments[deployment])
        ports = [int(config[setting]) for setting in settings]
        assert [p["containerPort"] for p in container["ports"]] == ports
        annotations = deployments[deployment]["spec"]["template"]["metadata"].get("annotations")
        if annotations:  # Prometheus scrapes the metrics port (the last one)
            assert annotations["prometheus.io/port"] == str(ports[-1]), deployment


def test_systemd_environment_examples_are_valid_settings() -> None:
    values = _env_file(SYSTEMD / "dialer.env.example")
    values.update(_env_file(SYSTEMD / "flower.env.example"))
    settings = _settings_once_secrets_are_replaced(values)
    assert settings.database_url
    assert settings.redis_url
    assert settings.flower_password is not None


def test_a_misspelt_or_invalid_setting_would_be_caught() -> None:
    """The drift checks above can fail: a typo is not a field, a bad value does not load."""
    fields = {f"DIALER_{name.upper()}" for name in Settings.model_fields}
    assert "DIALER_WORKER_CONCURENCY" not in fields
    with pytest.raises(Exception, match="DIALER_WORKER_CONCURRENCY"):
        _settings_from_strings({"DIALER_WORKER_CONCURRENCY": "500"})


# ---------------------------------------------------------------- alerts


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_complete_and_parse_as_promql() -> None:
    rules = _alert_rules()
    assert len(rules) >= 8
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        promql_parser.parse(rule["expr"])  # raises on a syntax error
        assert re.fullmatch(r"[0-9]+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert anchor == rule["alert"].lower()


def test_every_alert_and_metric_is_explained_in_the_operations_guide() -> None:
    guide = OPERATIONS.read_text()
    headings = set(re.findall(r"^### (\w+)$", guide, flags=re.MULTILINE))
    assert {rule["alert"] for rule in _alert_rules()} <= headings
    metrics = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for rule in _alert_rules()
        for name in re.findall(r"\b(?:dialer|flower)_[a-z_]+", rule["expr"])
    }
    assert metrics
    assert {m for m in metrics if f"`{m}`" not in guide} == set()


def _exported_dialer_metrics() -> set[str]:
    """Every sample name the dialer exports, each family exercised once."""
    metrics.attempt_finished("answered")
    metrics.dispatch_finished(1, {"c": 1}, {"timeout": 1})
    metrics.scan_finished(0.01, claimed=1)
    metrics.webhook_events("forged")
    metrics.webhook_delivery("failed")
    with metrics.provider_request("vapi", "place"):
        pass
    gauges = metrics.CampaignGauges(lambda: [metrics.CampaignLoad("c", 1, 1, 1)])
    inbox = metrics.InboxGauges(lambda: metrics.InboxLoad(1, 1.0))
    queues = metrics.QueueGauges(lambda: metrics.QueueLoad({"scan": 1}, 1))
    hooks = metrics.WebhookGauges(lambda: 1)
    text = generate_latest(metrics.exposition_registry(gauges, inbox, queues, hooks)).decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def _flower_metrics() -> set[str]:
    """The names Flower's own source declares (flower/events.py), with histogram samples."""
    import flower.events

    source = Path(flower.events.__file__).read_text()
    names = set(re.findall(r"['\"](flower_[a-z_]+)['\"]", source))
    assert "flower_events_total" in names
    return names | {f"{n}_{s}" for n in names for s in ("bucket", "sum", "count")}


def test_every_dialer_metric_an_alert_uses_is_exported() -> None:
    """The alerts read names the code really exports (a renamed metric fails here)."""
    exported = _exported_dialer_metrics()
    used = {
        name for rule in _alert_rules() for name in re.findall(r"\bdialer_[a-z_]+", rule["expr"])
    }
    assert used
    assert used - exported == set()


# ---------------------------------------------------------------- grafana, operator objects

GRAFANA = DEPLOY / "grafana"


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, panel)
        for path in sorted(GRAFANA.glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
    ]


def _panel_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:dialer|flower)_[a-z_]+", expr))


def test_dashboards_cover_what_operators_watch() -> None:
    assert {path.name for path in GRAFANA.glob("*.json")} == {
        "dialer-campaigns.json",
        "dialer-celery.json",
    }
    used = {
        m for _, panel in _panels() for t in panel["targets"] for m in _panel_metrics(t["expr"])
    }
    for needed in (
        "dialer_calls_placed_total",
        "dialer_campaign_backlog",
        "dialer_campaign_calls_in_flight",
        "dialer_attempts_finished_total",
        "dialer_dispatch_errors_total",
        "dialer_scan_duration_seconds_bucket",
        "dialer_webhook_events_total",
        "dialer_inbox_lag_seconds",
        "dialer_webhook_deliveries_total",
        "dialer_webhook_endpoints_disabled",
        "flower_events_total",
        "flower_worker_online",
    ):
        assert needed in used, needed


def test_every_panel_query_parses_and_names_an_exported_metric() -> None:
    """A renamed or invented metric in a dashboard fails here, like one in the alerts."""
    known = _exported_dialer_metrics() | _flower_metrics()
    ids: dict[str, set[int]] = {}
    for name, panel in _panels():
        assert panel["id"] not in ids.setdefault(name, set()), (name, panel["title"])
        ids[name].add(panel["id"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            promql_parser.parse(target["expr"])
            used = _panel_metrics(target["expr"])
            assert used, (panel["title"], target["expr"])
            assert used - known == set(), (panel["title"], used - known)


def test_the_panel_check_would_catch_a_bogus_metric() -> None:
    known = _exported_dialer_metrics() | _flower_metrics()
    assert _panel_metrics("rate(dialer_calls_placedd_total[5m])") - known


def test_prometheus_rule_carries_exactly_the_raw_alert_groups() -> None:
    rule = yaml.safe_load((DEPLOY / "prometheus" / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_monitors_scrape_the_ports_the_manifests_name() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "prometheus" / "monitors.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"PodMonitor", "ServiceMonitor"}
    components = kinds["PodMonitor"]["spec"]["selector"]["matchExpressions"][0]["values"]
    for component in components:
        manifest = (DEPLOY / "k8s" / f"{component}.yaml").read_text()
        assert "name: metrics" in manifest, component
    assert kinds["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    flower = yaml.safe_load_all((DEPLOY / "k8s" / "flower.yaml").read_text())
    service = next(d for d in flower if d["kind"] == "Service")
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert kinds["ServiceMonitor"]["spec"]["endpoints"][0]["port"] in ports


def test_promql_parser_rejects_a_broken_expression() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(dialer_dispatch_errors_total[5m])")
