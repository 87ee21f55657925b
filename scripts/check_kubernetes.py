#!/usr/bin/env python3
"""Checks deploy/kubernetes without a cluster: renders the kustomization, validates every
object against Kubernetes' schemas (kubernetes-validate, strict, offline), and holds the
manifests to the binaries: probe ports are the listen ports, gRPC probes name the service the
server registers, pods outlive their hand-over, every variable set is documented for its
program, clients name the headless Services, database URLs come from Secrets.

The renderer below knows only the kustomize fields kustomization.yaml uses (and refuses any
other); where kubectl is installed, its `kubectl kustomize` must render the same objects."""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import yaml
from offline_check import report

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
API_DOC = ROOT / "docs" / "API.md"
# The oldest release the manifests are for: the gateway's preStop `sleep` is on by default
# from 1.30.
KUBERNETES_VERSION = "1.30.0"
# Kubernetes' default when a pod does not say.
DEFAULT_TERMINATION_GRACE_S = 30


@dataclass(frozen=True)
class Program:
    """One Deployment's binary, as the code and docs/API.md know it."""

    column: str  # how the table's "used by" column names it
    listen: str
    # The proto declaring the gRPC service its readiness names; None: the gateway speaks HTTP.
    proto: str | None
    database: str | None
    # The settings whose sum bounds how long it takes to exit after SIGTERM.
    leaves_within: tuple[str, ...]


PROGRAMS = {
    "auth-service": Program("auth", "AUTH_LISTEN", "proto/auth/v1/auth.proto", "AUTH_DATABASE_URL",
                            ("SHUTDOWN_GRACE_MS", "DRAIN_TIMEOUT_MS", "VERDICT_CACHE_LEASE_MS")),
    "inventory-service": Program("inventory", "INVENTORY_LISTEN", "proto/inventory/v1/inventory.proto",
                                 "INVENTORY_DATABASE_URL",
                                 ("SHUTDOWN_GRACE_MS", "DRAIN_TIMEOUT_MS", "PRODUCT_CACHE_LEASE_MS")),
    "gateway": Program("gateway", "GATEWAY_LISTEN", None, None, ("GATEWAY_REQUEST_TIMEOUT_MS",)),
}
# The variables through which a program calls another, each needed by its callers (their
# defaults, 127.0.0.1, point nowhere in a pod).
UPSTREAMS = {"AUTH_URL": "auth-service", "INVENTORY_URL": "inventory-service"}
CALLERS = {"inventory-service": ("AUTH_URL",), "gateway": ("AUTH_URL", "INVENTORY_URL")}
# The gateway's probe paths, as its routes spell them.
GATEWAY_PROBES = {"readinessProbe": "/readyz/", "livenessProbe": "/healthz/"}


# ---- rendering: the kustomize fields kustomization.yaml uses ----

KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "labels", "resources", "images", "patches"}


def json_patch(target: dict, operations: list) -> None:
    """RFC 6902's `add` and `replace`, the two kinds hardening.yaml uses."""
    for operation in operations:
        if operation["op"] not in ("add", "replace"):
            raise SystemExit(f"kubernetes: patch op {operation['op']!r} is not rendered here")
        *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in operation["path"].split("/")[1:]]
        node = target
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if operation["op"] == "add":
                node.insert(index, operation["value"])
            else:
                node[index] = operation["value"]
        else:
            node[last] = operation["value"]


def render() -> list[dict]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZE_FIELDS
    if unknown:
        raise SystemExit(f"kubernetes: kustomization.yaml uses {sorted(unknown)}, not rendered here")
    objects = [doc for resource in kustomization.get("resources", [])
               for doc in yaml.safe_load_all((MANIFESTS / resource).read_text()) if doc]
    for patch in kustomization.get("patches", []):
        operations = yaml.safe_load((MANIFESTS / patch["path"]).read_text())
        if set(patch["target"]) - {"kind", "name"} or not isinstance(operations, list):
            raise SystemExit(f"kubernetes: patch {patch} is not rendered here")
        for obj in objects:
            if all(obj.get("kind") == v if k == "kind" else obj["metadata"]["name"] == v
                   for k, v in patch["target"].items()):
                json_patch(obj, operations)
    images = kustomization.get("images", [])
    if any(set(image) - {"name", "newName", "newTag"} for image in images):
        raise SystemExit(f"kubernetes: images {images} are not rendered here")
    namespace = kustomization.get("namespace")
    for obj in objects:
        metadata = obj["metadata"]
        if namespace and obj["kind"] == "Namespace":
            metadata["name"] = namespace  # as kustomize does
        elif namespace:
            metadata["namespace"] = namespace
        for group in kustomization.get("labels", []):
            if group.get("includeSelectors") or set(group) - {"pairs", "includeTemplates", "includeSelectors"}:
                raise SystemExit(f"kubernetes: labels {group} are not rendered here")
            metadata.setdefault("labels", {}).update(group["pairs"])
            template = obj.get("spec", {}).get("template")
            if group.get("includeTemplates") and template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])
        for container in containers(obj):
            for image in images:
                if container["image"] == image["name"]:
                    tag = f":{image['newTag']}" if "newTag" in image else ""
                    container["image"] = image.get("newName", image["name"]) + tag
    return objects


def containers(obj: dict) -> list[dict]:
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def by_key(objects: list[dict]) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def compare_with_kubectl(objects: list[dict]) -> list[str]:
    """Where kubectl is installed, the renderer above must agree with the real kustomize."""
    if shutil.which("kubectl") is None:
        print("kubernetes: no kubectl here; rendered by this script alone")
        return []
    run = subprocess.run(["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        return [f"kubectl kustomize fails: {run.stderr.strip()}"]
    theirs, ours = by_key(list(yaml.safe_load_all(run.stdout))), by_key(objects)
    return [f"kubectl kustomize renders {kind} {name} otherwise than this script"
            for kind, name in sorted(set(theirs) | set(ours)) if theirs.get((kind, name)) != ours.get((kind, name))]


# ---- what the code and docs/API.md say ----

def documented() -> dict[str, tuple[set[str], str | None]]:
    """docs/API.md's configuration table: each name, the programs that read it, and its
    default where the column opens with a literal (`1000`, `10000`: … for two names)."""
    settings = {}
    for line in API_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        users = {word.strip() for word in cells[1].split(",")}
        defaults = cells[2].split(": ", 1)[0].split(", ")
        for index, name in enumerate(names):
            literal = re.match(r"`([^`]*)`", defaults[index]) if index < len(defaults) else None
            settings[name] = (users, literal.group(1) if literal else None)
    return settings


def grpc_service_name(program: str, proto: str) -> tuple[str | None, str | None]:
    """The `package.Service` the proto declares, and whether the program's server registers its
    health under the generated server's name (else a problem)."""
    text = (ROOT / proto).read_text()
    package = re.search(r"^package ([\w.]+);", text, re.M)
    service = re.search(r"^service (\w+) \{", text, re.M)
    if not (package and service):
        return None, f"{proto} declares no package and service"
    server = re.escape(service.group(1) + "Server")
    registers = re.compile(rf"set_serving::<{server}\b|{server}<\w+> as NamedService>::NAME")
    sources = (ROOT / program / "src").rglob("*.rs")
    if not any(registers.search(path.read_text()) for path in sources):
        return None, f"{program}/src registers no health status under {service.group(1)}'s name"
    return f"{package.group(1)}.{service.group(1)}", None


def host_allowed(host: str, allowed: str) -> bool:
    """The gateway's ALLOWED_HOSTS match (gateway/src/hosts.rs), ports ignored."""
    domain = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
    for pattern in (p.strip().lower() for p in allowed.split(",")):
        if pattern == "*" or pattern == domain:
            return True
        if pattern.startswith(".") and (domain == pattern[1:] or domain.endswith(pattern)):
            return True
    return False


# ---- the checks ----

def environment(container: dict, objects: dict) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
    """A container's variables: their values (None where a Secret holds them), where each
    comes from (`value`, `ConfigMap x`, `Secret x`), and references to nothing."""
    values, sources, problems = {}, {}, []
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                name = source[ref]["name"]
                obj = objects.get((kind, name))
                if obj is None:
                    problems.append(f"{container['name']} reads the missing {kind} {name}")
                    continue
                for key, value in {**obj.get("data", {}), **obj.get("stringData", {})}.items():
                    values[key] = value if kind == "ConfigMap" else None
                    sources[key] = f"{kind} {name}"
    for variable in container.get("env", []):
        name, value_from = variable["name"], variable.get("valueFrom", {})
        values[name], sources[name] = variable.get("value"), "value"
        if "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            secret = objects.get(("Secret", ref["name"]), {})
            if ref["key"] not in {**secret.get("data", {}), **secret.get("stringData", {})}:
                problems.append(f"{container['name']}'s {name} names {ref['key']} of Secret {ref['name']}, "
                                "which is not in the manifests")
            sources[name] = f"Secret {ref['name']}"
        elif value_from:
            sources[name] = "a reference"
    return values, sources, problems


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass
class Workload:
    """A program's Deployment with what its one container is given."""

    name: str
    program: Program
    deployment: dict
    values: dict[str, str | None]
    sources: dict[str, str]
    settings: dict  # documented()
    port: int | None = None  # the listen port, when it is 0.0.0.0:PORT

    @property
    def pod(self) -> dict:
        return self.deployment["spec"]["template"]

    @property
    def container(self) -> dict:
        return self.pod["spec"]["containers"][0]

    @property
    def labels(self) -> dict:
        return self.pod["metadata"].get("labels", {})

    def ports(self) -> dict:
        return {p.get("name"): p["containerPort"] for p in self.container.get("ports", [])}

    def setting(self, variable: str) -> str | None:
        """The value given, else docs/API.md's default."""
        if variable in self.values:
            return self.values[variable]
        return self.settings.get(variable, (set(), None))[1]


def check_settings(w: Workload) -> list[str]:
    """Every variable is one docs/API.md gives the program; it listens on every interface."""
    problems = []
    for variable in sorted(w.values):
        users = w.settings.get(variable, (set(), None))[0]
        if w.program.column not in users and "all" not in users:
            problems.append(f"{w.name} sets {variable}, which docs/API.md does not give to {w.program.column}")
    listen = str(w.values.get(w.program.listen))
    match = re.fullmatch(r"0\.0\.0\.0:(\d+)", listen)
    if not match:
        return problems + [f"{w.name}'s {w.program.listen} is {listen!r}, not 0.0.0.0:PORT"]
    w.port = int(match.group(1))
    if w.port not in w.ports().values():
        problems.append(f"{w.name} does not declare its listen port {w.port}")
    return problems


def check_probes(w: Workload) -> list[str]:
    """Probes ask the listen port: gRPC probes name the service the server registers, the
    gateway's the routes it serves with a Host it allows."""
    problems, service = [], None
    if w.program.proto:
        service, problem = grpc_service_name(w.name, w.program.proto)
        problems += [problem] if problem else []
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = w.container.get(kind)
        if probe is None:
            problems += [] if kind == "startupProbe" else [f"{w.name} has no {kind}"]
            continue
        action = probe.get("grpc") or probe.get("httpGet") or {}
        if w.ports().get(action.get("port"), action.get("port")) != w.port:
            problems.append(f"{w.name}'s {kind} asks port {action.get('port')}, it listens on {w.port}")
        if w.program.proto:
            # Readiness names the service (NOT_SERVING through a hand-over, and inventory's
            # while auth is down); the others the server (""), lest they restart a pod for it.
            wanted = service if kind == "readinessProbe" else ""
            if "grpc" not in probe or probe["grpc"].get("service", "") != wanted:
                problems.append(f"{w.name}'s {kind} is not a gRPC probe of service {wanted!r}")
            continue
        path = GATEWAY_PROBES.get(kind)
        if path and action.get("path") != path:
            problems.append(f"{w.name}'s {kind} asks {action.get('path')}, not {path}")
        # The kubelet sends the pod's address as Host unless told otherwise.
        headers = {h["name"].lower(): h["value"] for h in action.get("httpHeaders", [])}
        host = headers.get("host", "POD-IP")
        if not host_allowed(host, str(w.setting("ALLOWED_HOSTS"))):
            problems.append(f"{w.name}'s {kind} sends Host {host}, which ALLOWED_HOSTS refuses")
    # The gateway serves /metrics on its own port; auth and inventory on METRICS_LISTEN's.
    metrics_port = w.port
    if w.program.proto:
        listen = w.setting("METRICS_LISTEN")
        metrics_port = int(listen.rsplit(":", 1)[1]) if listen else None
        if metrics_port is None:
            problems.append(f"{w.name} sets no METRICS_LISTEN: its metrics are not served")
        elif metrics_port not in w.ports().values():
            problems.append(f"{w.name} serves metrics on {metrics_port}, not a container port")
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(metrics_port),
              "prometheus.io/path": "/metrics"}
    annotations = w.pod["metadata"].get("annotations", {})
    if any(annotations.get(k) != v for k, v in scrape.items()):
        problems.append(f"{w.name}'s pods are not annotated for scraping: {scrape}")
    return problems


def check_leaving(w: Workload) -> list[str]:
    """Killed only after the process has left by itself: its preStop, then its hand-over."""
    leaving = [w.setting(variable) for variable in w.program.leaves_within]
    if None in leaving:
        return [f"no value or documented default for one of {w.program.leaves_within}"]
    pre_stop = w.container.get("lifecycle", {}).get("preStop", {})
    if pre_stop and "sleep" not in pre_stop:
        return [f"{w.name}'s preStop is not a sleep: its length is unknown here"]
    needed = pre_stop.get("sleep", {}).get("seconds", 0) + sum(int(v) for v in leaving) / 1000
    grace = w.pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_S)
    if grace <= needed:
        return [f"{w.name} is killed after {grace} s, before it leaves ({needed:g} s: preStop and "
                f"{' + '.join(w.program.leaves_within)})"]
    return []


def check_pods(w: Workload, objects: list[dict]) -> list[str]:
    """The database URL from a Secret, resources bounded, the pod locked down, a disruption
    budget, and a Service: headless, over two replicas, for the services others call."""
    problems = []
    if w.program.database and not w.sources.get(w.program.database, "").startswith("Secret "):
        problems.append(f"{w.name}'s {w.program.database} does not come from a Secret")
    resources = w.container.get("resources", {})
    for bound in ("requests", "limits"):
        if set(resources.get(bound, {})) != {"cpu", "memory"}:
            problems.append(f"{w.name} has no cpu and memory {bound}")
    security, pod_security = w.container.get("securityContext", {}), w.pod["spec"].get("securityContext", {})
    if not (pod_security.get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
            and security.get("allowPrivilegeEscalation") is False
            and "ALL" in security.get("capabilities", {}).get("drop", [])):
        problems.append(f"{w.name} may run as root, write its image, escalate or keep capabilities")
    budgets = [o["spec"].get("selector", {}).get("matchLabels", {})
               for o in objects if o["kind"] == "PodDisruptionBudget"]
    if not any(selects(selector, w.labels) for selector in budgets):
        problems.append(f"no PodDisruptionBudget covers {w.name}")
    front = [o for o in objects if o["kind"] == "Service" and selects(o["spec"].get("selector", {}), w.labels)]
    if not front:
        problems.append(f"no Service selects {w.name}")
    if w.name in UPSTREAMS.values():
        if any(s["spec"].get("clusterIP") != "None" for s in front):
            problems.append(f"{w.name}'s Service is not headless: its clients would see one address")
        if w.deployment["spec"].get("replicas", 1) < 2:
            problems.append(f"{w.name} runs fewer than 2 replicas")
    return problems


def check_clients(w: Workload, workloads: dict[str, Workload], keyed: dict) -> list[str]:
    """Each URL a caller is given names a headless Service (in its namespace) that selects the
    callee, on a port that reaches the callee's listen port."""
    problems = []
    namespace = w.deployment["metadata"].get("namespace", "")
    suffixes = ("", f".{namespace}", f".{namespace}.svc", f".{namespace}.svc.cluster.local")
    for variable in CALLERS.get(w.name, ()):
        callee = workloads.get(UPSTREAMS[variable])
        for url in (u.strip() for u in str(w.values.get(variable, "")).split(",")):
            match = re.fullmatch(r"http://([a-z0-9-]+)(\.[a-z0-9.-]+)?:(\d+)", url)
            service = keyed.get(("Service", match.group(1))) if match else None
            if not (match and (match.group(2) or "") in suffixes and service
                    and service["spec"].get("clusterIP") == "None"):
                problems.append(f"{w.name}'s {variable} {url!r} does not name a headless Service")
                continue
            if callee is None or not selects(service["spec"].get("selector", {}), callee.labels):
                problems.append(f"{w.name}'s {variable} names Service {match.group(1)}, "
                                f"which does not select {UPSTREAMS[variable]}")
                continue
            targets = {p["port"]: p.get("targetPort", p["port"]) for p in service["spec"]["ports"]}
            target = targets.get(int(match.group(3)))
            if target is None or callee.ports().get(target, target) != callee.port:
                problems.append(f"{w.name}'s {variable} port {match.group(3)} does not reach "
                                f"{callee.name}'s listen port")
    return problems


def check() -> list[str]:
    objects = render()
    problems = compare_with_kubectl(objects)
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{obj['kind']} {obj['metadata']['name']} is not valid for Kubernetes "
                            f"{KUBERNETES_VERSION}: {error.message} at {'.'.join(map(str, error.path))}")
    keyed, settings = by_key(objects), documented()
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    if set(deployments) != set(PROGRAMS):
        problems.append(f"Deployments {sorted(deployments)}, expected {sorted(PROGRAMS)}")
    workloads = {}
    for name, deployment in deployments.items():
        if name not in PROGRAMS:
            continue
        if len(containers(deployment)) != 1:
            problems.append(f"{name} does not run one container")
            continue
        values, sources, missing = environment(containers(deployment)[0], keyed)
        workloads[name] = Workload(name, PROGRAMS[name], deployment, values, sources, settings)
        problems += missing + check_settings(workloads[name])
    # With every listen port known, which the clients' checks need.
    for w in workloads.values():
        if w.port is not None:
            problems += check_probes(w) + check_leaving(w) + check_pods(w, objects)
            problems += check_clients(w, workloads, keyed)
    return problems


if __name__ == "__main__":
    report("kubernetes", check(), f"deploy/kubernetes: valid for Kubernetes {KUBERNETES_VERSION}, agrees with the binaries: OK")
