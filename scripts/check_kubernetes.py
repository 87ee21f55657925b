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
import sys
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import yaml

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
            for image in kustomization.get("images", []):
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
    services = [o for o in objects if o["kind"] == "Service"]
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    if set(deployments) != set(PROGRAMS):
        problems.append(f"Deployments {sorted(deployments)}, expected {sorted(PROGRAMS)}")
    listen_ports = {}
    for name, program in PROGRAMS.items():
        deployment = deployments.get(name)
        if deployment is None:
            continue
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        values, sources, missing = environment(container, keyed)
        problems += missing

        def setting(variable: str) -> str | None:
            return values[variable] if variable in values else settings.get(variable, (set(), None))[1]

        for variable in sorted(values):
            users = settings.get(variable, (set(), None))[0]
            if program.column not in users and "all" not in users:
                problems.append(f"{name} sets {variable}, which docs/API.md does not give to {program.column}")

        # Listening on every interface, on the port the probes, the container and Services use.
        listen = str(values.get(program.listen))
        match = re.fullmatch(r"0\.0\.0\.0:(\d+)", listen)
        if not match:
            problems.append(f"{name}'s {program.listen} is {listen!r}, not 0.0.0.0:PORT")
            continue
        port = listen_ports[name] = int(match.group(1))
        named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if port not in named_ports.values():
            problems.append(f"{name} does not declare its listen port {port}")
        expected, problem = grpc_service_name(name, program.proto) if program.proto else (None, None)
        problems += [problem] if problem else []
        for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(probe_kind)
            if probe is None:
                if probe_kind != "startupProbe":
                    problems.append(f"{name} has no {probe_kind}")
                continue
            action = probe.get("grpc") or probe.get("httpGet") or {}
            probed = named_ports.get(action.get("port"), action.get("port"))
            if probed != port:
                problems.append(f"{name}'s {probe_kind} asks port {action.get('port')}, it listens on {port}")
            if program.proto:
                # Readiness names the service (NOT_SERVING through a hand-over, and inventory's
                # while auth is down); the others the server (""), lest they restart a pod for it.
                wanted = expected if probe_kind == "readinessProbe" else ""
                if "grpc" not in probe or probe["grpc"].get("service", "") != wanted:
                    problems.append(f"{name}'s {probe_kind} is not a gRPC probe of service {wanted!r}")
            else:
                path = GATEWAY_PROBES.get(probe_kind)
                if path and action.get("path") != path:
                    problems.append(f"{name}'s {probe_kind} asks {action.get('path')}, not {path}")
                # The kubelet sends the pod's address as Host unless told otherwise.
                headers = {h["name"].lower(): h["value"] for h in action.get("httpHeaders", [])}
                host = headers.get("host", "POD-IP")
                if not host_allowed(host, str(setting("ALLOWED_HOSTS"))):
                    problems.append(f"{name}'s {probe_kind} sends Host {host}, which ALLOWED_HOSTS refuses")
        if program.proto is None:
            annotations = pod["metadata"].get("annotations", {})
            scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
            if any(annotations.get(k) != v for k, v in scrape.items()):
                problems.append(f"{name}'s pods are not annotated for scraping: {scrape}")

        # Killed only after the process has left by itself.
        leaving = [setting(variable) for variable in program.leaves_within]
        if None in leaving:
            problems.append(f"no value or documented default for one of {program.leaves_within}")
            continue
        pre_stop = container.get("lifecycle", {}).get("preStop", {})
        if pre_stop and "sleep" not in pre_stop:
            problems.append(f"{name}'s preStop is not a sleep: its length is unknown here")
        needed = pre_stop.get("sleep", {}).get("seconds", 0) + sum(int(v) for v in leaving) / 1000
        grace = pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_S)
        if grace <= needed:
            problems.append(f"{name} is killed after {grace} s, before it leaves ({needed:g} s: preStop and "
                            f"{' + '.join(program.leaves_within)})")

        if program.database and not sources.get(program.database, "").startswith("Secret "):
            problems.append(f"{name}'s {program.database} does not come from a Secret")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            if set(resources.get(bound, {})) != {"cpu", "memory"}:
                problems.append(f"{name} has no cpu and memory {bound}")
        security, pod_security = container.get("securityContext", {}), pod["spec"].get("securityContext", {})
        if not (pod_security.get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
                and security.get("allowPrivilegeEscalation") is False
                and "ALL" in security.get("capabilities", {}).get("drop", [])):
            problems.append(f"{name} may run as root, write its image, escalate or keep capabilities")
        labels = pod["metadata"].get("labels", {})
        if not any(selects(b["spec"].get("selector", {}).get("matchLabels", {}), labels) for b in budgets):
            problems.append(f"no PodDisruptionBudget covers {name}")
        front = [s for s in services if selects(s["spec"].get("selector", {}), labels)]
        if not front:
            problems.append(f"no Service selects {name}")
        if name in UPSTREAMS.values() and any(s["spec"].get("clusterIP") != "None" for s in front):
            problems.append(f"{name}'s Service is not headless: its clients would see one address")
        if name in UPSTREAMS.values() and deployment["spec"].get("replicas", 1) < 2:
            problems.append(f"{name} runs fewer than 2 replicas")

        # Each caller names the callee's headless Service and its port.
        for variable in CALLERS.get(name, ()):
            callee = UPSTREAMS[variable]
            namespace = deployment["metadata"].get("namespace", "")
            urls = [u.strip() for u in str(values.get(variable, "")).split(",")]
            for url in urls:
                match = re.fullmatch(r"http://([a-z0-9-]+)(\.[a-z0-9.-]+)?:(\d+)", url)
                suffix_ok = match and (match.group(2) or "") in ("", f".{namespace}", f".{namespace}.svc",
                                                                  f".{namespace}.svc.cluster.local")
                service = keyed.get(("Service", match.group(1))) if match else None
                if not (suffix_ok and service and service["spec"].get("clusterIP") == "None"):
                    problems.append(f"{name}'s {variable} {url!r} does not name a headless Service")
                    continue
                callee_labels = deployments.get(callee, {}).get("spec", {}).get("template", {}) \
                    .get("metadata", {}).get("labels", {})
                if not selects(service["spec"].get("selector", {}), callee_labels):
                    problems.append(f"{name}'s {variable} names Service {match.group(1)}, which does not select {callee}")
                service_ports = {p["port"]: p.get("targetPort", p["port"]) for p in service["spec"]["ports"]}
                target = service_ports.get(int(match.group(3)))
                callee_ports = {p.get("name"): p["containerPort"]
                                for c in containers(deployments.get(callee, {})) for p in c.get("ports", [])}
                if target is None or callee_ports.get(target, target) != listen_ports.get(callee, "?"):
                    problems.append(f"{name}'s {variable} port {match.group(3)} does not reach {callee}'s listen port")
    return problems


if __name__ == "__main__":
    found = check()
    for problem in found:
        print(f"kubernetes: {problem}")
    if found:
        sys.exit(1)
    print(f"deploy/kubernetes: valid for Kubernetes {KUBERNETES_VERSION}, agrees with the binaries: OK")
