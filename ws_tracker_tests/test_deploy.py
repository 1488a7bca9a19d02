"""deploy/: the files are well-formed, agree with the project and with Dagster's Helm chart, and
the code location loads in a clean process from the image's command.

No Docker engine and no cluster are needed: the Dockerfile is read by a small parser below, the
Helm values are checked against the key paths of the chart's values schema (dagster/dagster
1.13.x, helm/dagster/values.schema.json and its templates, encoded in CHART_KEYS, not vendored),
and the image's CMD is run with the test environment's Python on PATH.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from ws_tracker import config
from ws_tracker.pipeline.jobs import CIRCUIT_SYNC_TAG, UNIT_SYNC_TAG
from ws_tracker.warehouse import credentials

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
VALUES = DEPLOY / "helm" / "values.yaml"
SECRETS = DEPLOY / "helm" / "secrets.example.yaml"
MIGRATE_JOB = DEPLOY / "k8s" / "migrate-job.yaml"
BIN = Path(sys.executable).parent

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# Every variable that carries a credential or a connection string: set at run time from a
# Kubernetes Secret, never in the image. DAGSTER_PG_PASSWORD is the chart's own.
SECRET_ENV = {
    config.ENV_DATABASE_URL,
    config.ENV_DAGSTER_PG_URL,
    config.ENV_WS_BASE_URL,
    config.ENV_WS_USERNAME,
    config.ENV_WS_PASSWORD,
    credentials.ENV_VAR,
}
NEVER_IN_IMAGE = SECRET_ENV | {"DAGSTER_PG_PASSWORD"}


# ----------------------------------------------------------------------------- Dockerfile parser
DOCKERFILE_KEYWORDS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments (also inside a continuation) and blank lines between instructions
        if not buf:
            start = lineno
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        keyword, _, args = " ".join(p for p in buf if p).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = []
    assert not buf, f"line {start}: the last instruction ends with a dangling '\\'"
    return out


def exec_form(instr: Instruction) -> list[str]:
    """The JSON array of an exec-form instruction; fails for the shell form."""
    try:
        value = json.loads(instr.args)
    except json.JSONDecodeError:
        pytest.fail(f"line {instr.line}: {instr.keyword} is not in exec (JSON array) form: "
                    f"{instr.args!r}")
    assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), (
        f"line {instr.line}: {instr.keyword} must be a non-empty JSON array of strings")
    return value


def env_pairs(instr: Instruction) -> dict[str, str]:
    """ENV KEY=VALUE [KEY=VALUE ...] (or the legacy ENV KEY VALUE)."""
    if "=" not in instr.args.split(" ", 1)[0]:
        key, _, value = instr.args.partition(" ")
        return {key: value.strip()}
    return dict(
        (m.group(1), m.group(2).strip('"'))
        for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', instr.args)
    )


def copy_parts(instr: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY/ADD in shell form."""
    words = instr.args.split()
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    assert len(words) >= 2, f"line {instr.line}: {instr.keyword} needs a source and a destination"
    return flags, words[:-1], words[-1]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def the_cmd(instructions: list[Instruction]) -> list[str]:
    cmds = [i for i in instructions if i.keyword == "CMD"]
    assert len(cmds) == 1, "exactly one CMD"
    return exec_form(cmds[0])


def option(argv: list[str], *names: str) -> str:
    for i, word in enumerate(argv):
        if word in names:
            return argv[i + 1]
    pytest.fail(f"{'/'.join(names)} missing from {argv}")


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def secrets() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in load_yaml_docs(SECRETS)}


def test_the_parser_reads_forms_and_catches_shell_form():
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM python:3.11.13-slim AS base\n"
        "RUN a \\\n  # a comment inside\n  && b\nCMD dagster code-server start\n"
    )
    assert [(i.keyword, i.args) for i in parsed] == [
        ("FROM", "python:3.11.13-slim AS base"),
        ("RUN", "a && b"),
        ("CMD", "dagster code-server start"),
    ]
    with pytest.raises(pytest.fail.Exception):
        exec_form(parsed[2])
    with pytest.raises(AssertionError):
        parse_dockerfile("FROM x\nRUN a \\\n")


# ----------------------------------------------------------------------------- every YAML parses
def test_every_yaml_under_deploy_parses():
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {VALUES, SECRETS, MIGRATE_JOB} <= set(files)
    for path in files:
        docs = load_yaml_docs(path)
        assert docs, f"{path} holds no document"
        assert all(isinstance(d, dict) for d in docs), f"{path}: every document is a mapping"


# ----------------------------------------------------------------------------- Dockerfile
def test_dockerfile_instructions_are_well_formed(dockerfile):
    assert dockerfile, "empty Dockerfile"
    unknown = [(i.line, i.keyword) for i in dockerfile if i.keyword not in DOCKERFILE_KEYWORDS]
    assert not unknown, f"unknown instructions: {unknown}"
    assert dockerfile[0].keyword == "FROM", "the first instruction is FROM"

    image = dockerfile[0].args.split()[0]
    # Pinned: a full python X.Y.Z tag, never a floating one (3.11-slim, latest).
    m = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim(-[a-z]+)?", image)
    assert m, f"base image {image!r} is not a pinned python:X.Y.Z-slim tag"
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert (int(m[1]), int(m[2])) >= (int(minimum[1]), int(minimum[2]))
    assert (int(m[1]), int(m[2])) == (3, 11)

    # The chart passes the code-server command, and the run launcher `dagster api execute_run`,
    # as container *args*: they replace CMD but would be appended to an ENTRYPOINT.
    assert not [i for i in dockerfile if i.keyword == "ENTRYPOINT"], "no ENTRYPOINT"
    for instr in dockerfile:
        if instr.keyword in ("CMD", "SHELL"):
            exec_form(instr)

    cmd = the_cmd(dockerfile)
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert option(cmd, "-h", "--host") == "0.0.0.0"
    port = option(cmd, "-p", "--port")
    exposed = [w for i in dockerfile if i.keyword == "EXPOSE" for w in i.args.split()]
    assert exposed == [port] == ["4000"]

    users = [i for i in dockerfile if i.keyword == "USER"]
    assert users, "the image runs as a non-root user"
    final_user = users[-1].args.split(":")[0]
    assert final_user not in ("root", "0")
    assert users[-1].line > max(i.line for i in dockerfile if i.keyword == "RUN")


def test_the_image_serves_this_projects_code_location(dockerfile):
    cmd = the_cmd(dockerfile)
    module = option(cmd, "-m", "--module-name")
    assert module == PYPROJECT["tool"]["dagster"]["module_name"] == "ws_tracker.definitions"
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == module


def test_dockerfile_bakes_no_secret(dockerfile):
    for instr in dockerfile:
        if instr.keyword == "ENV":
            baked = set(env_pairs(instr)) & NEVER_IN_IMAGE
            assert not baked, f"line {instr.line}: {baked} must come from a Secret at run time"
        if instr.keyword == "ARG":
            name = instr.args.split("=")[0].strip()
            assert name not in NEVER_IN_IMAGE, f"line {instr.line}: build arg {name} is a secret"
        if instr.keyword in ("ENV", "ARG", "RUN", "LABEL"):
            assert not re.search(r"postgres(ql)?(\+\w+)?://[^/\s:@]+:[^@\s]+@", instr.args), (
                f"line {instr.line}: a URL with a password")
            assert not re.search(r"(?i)(password|secret_key|token)\s*=", instr.args), (
                f"line {instr.line}: looks like a credential")
    # The image's copy of dagster.yaml reads its storage URL from the environment too.
    assert "env: DAGSTER_PG_URL" in (REPO / "dagster.yaml").read_text()


def test_dockerfile_installs_this_project_not_editable(dockerfile):
    workdir = "/"
    copied: dict[str, set[str]] = {}  # destination directory -> names copied there
    installs = []
    for instr in dockerfile:
        if instr.keyword == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, instr.args))
        elif instr.keyword in ("COPY", "ADD"):
            flags, sources, dest = copy_parts(instr)
            if "from" in flags:
                continue
            dest_dir = os.path.normpath(os.path.join(workdir, dest))
            if len(sources) == 1 and not dest.endswith("/"):
                # COPY ws_tracker ./ws_tracker: the directory arrives under its own name.
                copied.setdefault(os.path.dirname(dest_dir), set()).add(os.path.basename(dest_dir))
            else:
                copied.setdefault(dest_dir, set()).update(os.path.basename(s) for s in sources)
        elif instr.keyword == "RUN" and re.search(r"\bpip install\b", instr.args):
            installs.append((workdir, instr))
    assert len(installs) == 1, "one pip install"
    workdir, run = installs[0]
    words = re.split(r"\s+", run.args.split("&&")[0].strip())
    args = words[words.index("install") + 1:]
    assert not {"-e", "--editable"} & set(args), "the project is installed, not linked"
    targets = [os.path.normpath(os.path.join(workdir, a)) for a in args
               if not a.startswith("-") and (a == "." or a.startswith(("/", "./")))]
    assert len(targets) == 1, f"pip installs one local project: {args}"
    there = copied.get(targets[0], set())
    # What setuptools needs to build this project: pyproject.toml, its readme, its packages.
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    needed |= {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert needed <= there, f"{sorted(needed - there)} not copied into {targets[0]}"
    # Anything else installed is pinned, and dagster-k8s goes with the pinned dagster-postgres.
    extras = [a.strip("\"'") for a in args if not a.startswith("-") and a not in (".",)
              and not a.startswith(("/", "./"))]
    assert all("==" in e for e in extras), f"unpinned extras: {extras}"
    pins = dict(d.split("==") for d in PYPROJECT["project"]["dependencies"] if "==" in d)
    k8s = [e.split("==")[1] for e in extras if e.startswith("dagster-k8s==")]
    assert k8s == [pins["dagster-postgres"]], "dagster-k8s at the version of dagster-postgres"


def test_dockerignore_sends_only_what_the_image_copies(dockerfile):
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    assert patterns[0] == "*", "everything is excluded first"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for instr in dockerfile:
        if instr.keyword in ("COPY", "ADD"):
            flags, sources, _ = copy_parts(instr)
            if "from" not in flags:
                for src in sources:
                    assert src.split("/")[0] in included, f"{src} is not in the build context"
    assert not included & {".venv", ".ws_tracker", ".git", "ws_tracker_tests", "bench"}


# ----------------------------------------------------------------------------- Helm values
class OneOf:
    def __init__(self, *specs):
        self.specs = specs


ANY = object()  # a free-form mapping the chart passes through (Kubernetes objects, DB params)
STR, INT, BOOL = str, int, bool
IMAGE = {"repository": STR, "tag": OneOf(STR, INT), "pullPolicy": {"Always", "IfNotPresent", "Never"}}
SECRET_ENV_SOURCE = [{"name": STR, "optional": BOOL}]
CONFIGMAP_ENV_SOURCE = [{"name": STR, "optional": BOOL}]
TICK_RETENTION = {"purgeAfterDays": OneOf(
    INT, {"skipped": INT, "success": INT, "failure": INT, "started": INT})}
POD_KEYS = {
    "env": OneOf(ANY, [ANY]), "envConfigMaps": CONFIGMAP_ENV_SOURCE, "envSecrets": SECRET_ENV_SOURCE,
    "annotations": ANY, "labels": ANY, "nodeSelector": ANY, "affinity": ANY, "tolerations": [ANY],
    "podSecurityContext": ANY, "securityContext": ANY, "resources": ANY,
    "livenessProbe": ANY, "readinessProbe": ANY, "startupProbe": ANY, "schedulerName": STR,
    "volumeMounts": [ANY], "volumes": [ANY],
}
# The key paths of dagster/dagster's values.schema.json (1.13.x) for the parts we set. Objects the
# schema closes (additionalProperties: false) list all their keys here; runMonitoring and
# runRetries are open objects in the schema, so they list the keys the chart's instance template
# (configmap-instance.yaml) reads.
CHART_KEYS = {
    "global": {"postgresqlSecretName": STR, "dagsterHome": STR, "serviceAccountName": STR,
               "celeryConfigSecretName": STR},
    "generatePostgresqlPasswordSecret": BOOL,
    "postgresql": {
        "enabled": BOOL, "image": IMAGE, "postgresqlHost": STR, "postgresqlUsername": STR,
        "postgresqlPassword": STR, "postgresqlDatabase": STR, "postgresqlParams": ANY,
        "postgresqlScheme": STR, "service": {"port": INT},
    },
    "dagsterWebserver": {
        **POD_KEYS, "replicaCount": INT, "image": IMAGE, "nameOverride": STR, "pathPrefix": STR,
        "service": {"type": STR, "port": INT, "annotations": ANY}, "workspace": ANY,
        "deploymentLabels": ANY, "enableReadOnly": BOOL, "dbStatementTimeout": INT,
        "dbPoolRecycle": INT, "logLevel": STR, "initContainerResources": ANY,
    },
    "dagster-user-deployments": {
        "enabled": BOOL, "enableSubchart": BOOL, "imagePullSecrets": [ANY],
        "deployments": [{
            **POD_KEYS, "name": STR, "image": IMAGE, "dagsterApiGrpcArgs": [STR],
            "codeServerArgs": [STR], "includeConfigInLaunchedRuns": {"enabled": BOOL},
            "deploymentNamespace": STR, "port": INT, "initContainers": [ANY],
            "sidecarContainers": [ANY],
        }],
    },
    "runLauncher": {
        "type": {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"},
        "config": {"k8sRunLauncher": {
            "image": IMAGE, "imagePullPolicy": {"Always", "IfNotPresent", "Never"},
            "jobNamespace": STR, "loadInclusterConfig": BOOL, "kubeconfigFile": STR,
            "envConfigMaps": CONFIGMAP_ENV_SOURCE, "envSecrets": SECRET_ENV_SOURCE,
            "envVars": [STR], "volumeMounts": [ANY], "volumes": [ANY], "labels": ANY,
            "failPodOnRunFailure": BOOL, "resources": ANY, "schedulerName": STR,
            "securityContext": ANY, "runK8sConfig": {
                "containerConfig": ANY, "podSpecConfig": ANY, "podTemplateSpecMetadata": ANY,
                "jobSpecConfig": ANY, "jobMetadata": ANY},
        }},
    },
    "dagsterDaemon": {
        **POD_KEYS, "enabled": BOOL, "image": IMAGE, "heartbeatTolerance": INT,
        "deploymentLabels": ANY, "initContainerResources": ANY,
        "runCoordinator": {
            "enabled": BOOL, "type": {"QueuedRunCoordinator", "CustomRunCoordinator"},
            "config": {"queuedRunCoordinator": {
                "maxConcurrentRuns": INT,
                "tagConcurrencyLimits": [{"key": STR, "value": OneOf(STR, {"applyLimitPerUniqueValue": BOOL}), "limit": INT}],
                "dequeueIntervalSeconds": INT, "dequeueNumWorkers": INT, "dequeueUseThreads": BOOL,
                "blockOpConcurrencyLimitedRuns": {"enabled": BOOL, "opConcurrencySlotBuffer": INT},
            }},
        },
        "runMonitoring": {"enabled": BOOL, "startTimeoutSeconds": INT, "cancelTimeoutSeconds": INT,
                          "maxResumeRunAttempts": INT, "pollIntervalSeconds": INT,
                          "freeSlotsAfterRunEndSeconds": INT},
        "runRetries": {"enabled": BOOL, "maxRetries": INT, "retryOnAssetOrOpFailure": BOOL},
        "backfills": {"useThreads": BOOL, "numWorkers": INT, "numSubmitWorkers": INT},
        "checkDbReadyInitContainer": BOOL, "logFormat": STR, "extraContainers": [ANY],
        "extraPrependedInitContainers": [ANY],
        "sensors": {"useThreads": BOOL, "numWorkers": INT, "numSubmitWorkers": INT},
        "schedules": {"useThreads": BOOL, "numWorkers": INT, "numSubmitWorkers": INT},
    },
    "retention": {"enabled": BOOL, "sensor": TICK_RETENTION, "schedule": TICK_RETENTION,
                  "autoMaterialize": TICK_RETENTION},
    "telemetry": {"enabled": BOOL},
    "rabbitmq": {"enabled": BOOL},
    "redis": {"enabled": BOOL},
    "flower": {"enabled": BOOL},
}


def chart_errors(value, spec=CHART_KEYS, path: str = "") -> list[str]:
    """Where ``value`` leaves the chart's key structure (empty when it fits)."""
    where = path or "<root>"
    if spec is ANY:
        return []
    if isinstance(spec, OneOf):
        for option_spec in spec.specs:
            if not chart_errors(value, option_spec, path):
                return []
        return [f"{where}: {value!r} fits none of the allowed forms"]
    if isinstance(spec, set):
        return [] if value in spec else [f"{where}: {value!r} not one of {sorted(spec)}"]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [e for i, item in enumerate(value) for e in chart_errors(item, spec[0], f"{path}[{i}]")]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        errors = []
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key not in spec:
                errors.append(f"{sub}: not a key of the chart")
            else:
                errors.extend(chart_errors(item, spec[key], sub))
        return errors
    ok = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
    return [] if ok else [f"{where}: expected {spec.__name__}, got {value!r}"]


def test_the_key_checker_can_fail():
    assert chart_errors({"dagsterDaemon": {"runCoordinatr": {}}}) == [
        "dagsterDaemon.runCoordinatr: not a key of the chart"]
    assert chart_errors({"runLauncher": {"type": "K8SRunLauncher"}})
    assert chart_errors({"dagsterDaemon": {"runMonitoring": {"enabled": "yes"}}})
    assert chart_errors({"retention": {"sensor": {"purgeAfterDays": {"skipped": 7}}}}) == []
    assert chart_errors({"retention": {"sensor": {"purgeAfterDays": {"skiped": 7}}}})
    assert chart_errors({"postgresql": {"service": {"port": True}}})


def test_helm_values_use_only_the_charts_keys(values):
    assert chart_errors(values) == []
    # The schema's conditionals: the selected launcher / coordinator has its config block.
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert "k8sRunLauncher" in values["runLauncher"]["config"]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    assert "queuedRunCoordinator" in coordinator["config"]


def test_helm_values_carry_the_settings_of_dagster_yaml(values):
    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    ours = instance["concurrency"]["runs"]  # the run queue's limits (dagster.yaml `concurrency`)
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert queued["maxConcurrentRuns"] == ours["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == ours["tag_concurrency_limits"] == [
        {"key": CIRCUIT_SYNC_TAG, "limit": 1}, {"key": UNIT_SYNC_TAG, "limit": 1}]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring == {
        "enabled": instance["run_monitoring"]["enabled"],
        "startTimeoutSeconds": instance["run_monitoring"]["start_timeout_seconds"],
        "maxResumeRunAttempts": instance["run_monitoring"]["max_resume_run_attempts"],
        "pollIntervalSeconds": instance["run_monitoring"]["poll_interval_seconds"],
    }
    assert values["telemetry"]["enabled"] == instance["telemetry"]["enabled"]
    assert values["dagsterDaemon"]["enabled"] is True
    retries = values["dagsterDaemon"]["runRetries"]
    assert retries["enabled"] is True and retries["maxRetries"] >= 1
    if "run_retries" in instance:
        assert retries == {
            "enabled": instance["run_retries"]["enabled"],
            "maxRetries": instance["run_retries"]["max_retries"],
            "retryOnAssetOrOpFailure": instance["run_retries"].get(
                "retry_on_asset_or_op_failure", True),
        }
    retention = values["retention"]
    assert retention["enabled"] is True
    assert retention["schedule"]["purgeAfterDays"] > 0
    assert all(v > 0 for v in retention["sensor"]["purgeAfterDays"].values())
    if "retention" in instance:
        for kind in ("schedule", "sensor"):
            assert retention[kind]["purgeAfterDays"] == instance["retention"][kind][
                "purge_after_days"], kind


def test_helm_values_wire_image_storage_and_secrets(values, secrets, dockerfile):
    dagster_version = version("dagster")
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert values[component]["image"]["tag"] == dagster_version, f"{component} image pinned"

    udep = values["dagster-user-deployments"]
    assert udep["enabled"] is True and udep["enableSubchart"] is True
    (deployment,) = udep["deployments"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", deployment["name"])
    tag = str(deployment["image"]["tag"])
    assert tag and tag != "latest", "the code location's image is pinned"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True

    # The chart's deployment template runs
    #   dagster code-server start -h 0.0.0.0 -p <port> <codeServerArgs...>
    # which must be the image's own CMD.
    chart_command = ["dagster", "code-server", "start", "-h", "0.0.0.0",
                     "-p", str(deployment["port"]), *deployment["codeServerArgs"]]
    assert "dagsterApiGrpcArgs" not in deployment
    assert chart_command == the_cmd(dockerfile)

    env_secret = secrets["ws-tracker-env"]
    assert deployment["envSecrets"] == [{"name": env_secret["metadata"]["name"]}]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == [{"name": env_secret["metadata"]["name"]}]
    assert launcher["loadInclusterConfig"] is True

    # Dagster's storage: external PostgreSQL, password only in the Secret.
    pg = values["postgresql"]
    assert pg["enabled"] is False
    assert all(pg[k] for k in ("postgresqlHost", "postgresqlUsername", "postgresqlDatabase"))
    assert "postgresqlPassword" not in pg
    assert values["generatePostgresqlPasswordSecret"] is False
    pg_secret = secrets[values["global"]["postgresqlSecretName"]]
    assert set(pg_secret["stringData"]) == {"postgresql-password"}

    # Celery is off: runs are isolated by the K8sRunLauncher.
    assert not any(values[k]["enabled"] for k in ("rabbitmq", "redis", "flower"))


def test_secret_example_has_every_variable_and_only_placeholders(secrets):
    assert set(secrets) == {"ws-tracker-env", "dagster-postgresql-secret"}
    for name, secret in secrets.items():
        assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret"
        assert "data" not in secret, f"{name}: plain placeholders in stringData, nothing encoded"
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, f"{name}.{key} is not an obvious placeholder"
    assert set(secrets["ws-tracker-env"]["stringData"]) == SECRET_ENV


def test_migration_job_runs_ws_tracker_db_migrate_in_the_same_image(values, secrets):
    (job,) = load_yaml_docs(MIGRATE_JOB)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["generateName"].endswith("-") and "name" not in job["metadata"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    image = values["dagster-user-deployments"]["deployments"][0]["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert container["envFrom"] == [{"secretRef": {"name": "ws-tracker-env"}}]
    assert "ws-tracker-env" in secrets
    program, *args = container["args"]
    assert program in PYPROJECT["project"]["scripts"] and args == ["db", "migrate"]
    from ws_tracker.cli import build_parser

    parsed = build_parser().parse_args(args)
    assert (parsed.command, parsed.db_command) == ("db", "migrate")


# ----------------------------------------------------------------------------- the code location
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_option(argv: list[str], names: tuple[str, ...], value: str) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out):
        if word in names:
            out[i + 1] = value
            return out
    pytest.fail(f"{names} not in {argv}")


def test_code_location_loads_in_a_clean_process_from_the_image_command(dockerfile, tmp_path):
    from dagster import DagsterInstance
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._serdes import deserialize_value

    port = free_port()
    argv = with_option(the_cmd(dockerfile), ("-h", "--host"), "127.0.0.1")
    argv = with_option(argv, ("-p", "--port"), str(port))
    # A clean environment: the PATH the image would have (here the test's venv), a temporary
    # home and DAGSTER_HOME, dummy values for every WS-Tracker variable. Nothing listens on
    # port 9, so any connection attempt at load time would fail.
    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster_home"
    workdir = tmp_path / "workdir"  # like the image's WORKDIR: no source tree to import from
    for d in (home, dagster_home, workdir):
        d.mkdir()
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        config.ENV_DATABASE_URL: "postgresql://ws_tracker:dummy@127.0.0.1:9/ws_tracker",
        config.ENV_DAGSTER_PG_URL: "postgresql://dagster:dummy@127.0.0.1:9/dagster",
        config.ENV_WS_BASE_URL: "http://127.0.0.1:9",
        config.ENV_WS_USERNAME: "DUMMY\\user",
        config.ENV_WS_PASSWORD: "dummy",
        credentials.ENV_VAR: "dummy",
    }
    log = tmp_path / "code-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 25
        listing = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the code server exited:\n{log.read_text()[-4000:]}"
            try:
                listing = deserialize_value(client.list_repositories())
                break
            except Exception:  # not listening yet, or still loading the module
                time.sleep(0.25)
        assert listing is not None, f"not healthy within 25 s:\n{log.read_text()[-4000:]}"
        assert type(listing).__name__ == "ListRepositoriesResponse", listing

        # The chart's readiness probe, as it runs it in the pod.
        probe = subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port),
                                "-h", "127.0.0.1"], env=env, cwd=workdir, capture_output=True,
                               text=True, timeout=20)
        assert probe.returncode == 0, probe.stdout + probe.stderr

        # What the webserver sees: the repository over gRPC, as the chart's webserver loads it.
        origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port,
                                              location_name="ws-tracker")
        with DagsterInstance.ephemeral() as instance, origin.create_location(instance) as location:
            (repo,) = location.get_repositories().values()
            jobs = {j.name for j in repo.get_all_jobs()}
            assets = {n.asset_key.to_user_string() for n in repo.get_asset_node_snaps()}
            sensors = {s.name for s in repo.get_sensors()}
        assert {"daily_pipeline", "unit_sync", "circuit_sync"} <= jobs
        assert {"circuits", "planned_unit_captures", "circuit_aggregates"} <= assets
        assert "sync_log_sweeper" in sensors
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:  # the code server's own child process, whatever happened to its parent
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
