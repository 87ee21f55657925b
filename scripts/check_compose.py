#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine: it parses, and it names what the
deployment needs (PostgreSQL and the three services, health checks, start order on healthy
dependencies, settings from the environment, auth and inventory scaled to two replicas that
their clients find by the service's name and that leave without being killed mid-drain), and
the Dockerfile has a stage for each service. docker-compose.tls.yml, laid over it, must give
every gRPC hop mutual TLS with exactly the files `stack certs` writes (its SERVICES, read from
src/certs.rs), each service its own certificate, https:// URLs naming the services, and
identities that have certificates."""

import re
from pathlib import Path

import yaml
from offline_check import report

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth-service", "inventory-service", "gateway")
# The scaled services, their gRPC port, and who calls them through which variable.
SCALED = {
    "auth-service": ("50051", {"inventory-service": "AUTH_URL", "gateway": "AUTH_URL"}),
    "inventory-service": ("50052", {"gateway": "INVENTORY_URL"}),
}


def default(value) -> str:
    """A value as compose reads it when its variable is unset: `${NAME:-2}` is `2`."""
    text = str(value)
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", text)
    return match.group(1) if match else text


def seconds(value) -> float:
    """A compose duration (`15s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(value))
    return sum(float(amount) * units[unit] for amount, unit in parts)


def check() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    services = compose.get("services", {})
    problems = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    need("postgres" in services, "no postgres service")
    need("healthcheck" in services.get("postgres", {}), "postgres has no health check")
    for name in SERVICES:
        service = services.get(name)
        if service is None:
            problems.append(f"no {name} service")
            continue
        build = service.get("build", {})
        need(build.get("target") == name, f"{name} is not built from the Dockerfile stage {name}")
        stage = re.search(rf"^FROM (\S+) AS {re.escape(name)}$(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
        need(stage is not None, f"the Dockerfile has no stage {name}")
        # The health check: the stage's own, or the shared runtime stage's `service healthcheck`
        # with the stage copying in its binary's directory, where `service` links to it.
        own_check = stage is not None and re.search(
            rf'HEALTHCHECK .*"{re.escape(name)}", "healthcheck"', stage.group(2)) is not None
        runtime = stage and re.search(
            rf"^FROM \S+ AS {re.escape(stage.group(1))}$(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
        shared_check = bool(
            runtime
            and re.search(r'HEALTHCHECK .*"service", "healthcheck"', runtime.group(1))
            and re.search(rf"COPY --from=\S+ /out/{re.escape(name)}/ ", stage.group(2))
            and re.search(rf"ln -s \$service /out/\$service/service", dockerfile)
            and re.search(rf'ENTRYPOINT \["{re.escape(name)}"\]', stage.group(2)))
        need(own_check or shared_check, f"the {name} image has no health check")
        for dependency, condition in service.get("depends_on", {}).items():
            need(condition.get("condition") == "service_healthy",
                 f"{name} starts before {dependency} is healthy")
        need(bool(service.get("environment")), f"{name} takes no settings from the environment")
    need("postgres" in services.get("auth-service", {}).get("depends_on", {}), "auth does not wait for postgres")
    need("auth-service" in services.get("inventory-service", {}).get("depends_on", {}),
         "inventory does not wait for auth")
    auth = services.get("auth-service", {})
    need("ports" not in auth, "auth publishes a fixed host port, so it cannot scale")
    need(str(auth.get("environment", {}).get("AUTH_DATABASE_URL", "")).startswith("postgres://"),
         "auth does not use PostgreSQL")
    need("${POSTGRES_PASSWORD" in (ROOT / "docker-compose.yml").read_text(),
         "the database password is not taken from the environment")
    for name, (port, callers) in SCALED.items():
        service = services.get(name, {})
        replicas = default(service.get("deploy", {}).get("replicas", 1))
        need(replicas.isdigit() and int(replicas) >= 2, f"{name} does not run 2 replicas by default")
        for published in service.get("ports", []):
            need(":" not in str(published),
                 f"{name} publishes the fixed host port {published}, so it cannot scale")
        environment = service.get("environment", {})
        grace = float(default(environment.get("SHUTDOWN_GRACE_MS", 1000))) / 1000
        drain = float(default(environment.get("DRAIN_TIMEOUT_MS", 10000))) / 1000
        need(seconds(service.get("stop_grace_period", "10s")) > grace + drain,
             f"{name} is killed before its grace and drain are over (stop_grace_period)")
        for caller, variable in callers.items():
            url = str(services.get(caller, {}).get("environment", {}).get(variable, ""))
            need(url == f"http://{name}:{port}",
                 f"{caller}'s {variable} does not name {name} (so it misses replicas): {url!r}")
            need("RESOLVE_INTERVAL_MS" in services.get(caller, {}).get("environment", {}),
                 f"{caller} does not say how often it looks {name}'s replicas up")
    return problems


def check_tls() -> list[str]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text()).get("services", {})
    tls = yaml.safe_load((ROOT / "docker-compose.tls.yml").read_text()).get("services", {})
    certs = re.search(r"pub const SERVICES: \[&str; \d+\] = \[([^\]]*)\]",
                      (ROOT / "src" / "certs.rs").read_text())
    certified = re.findall(r'"([^"]+)"', certs.group(1)) if certs else []
    problems = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    need(sorted(certified) == sorted(SERVICES),
         f"stack certs makes certificates for {certified}, not for the services {SERVICES}")
    written = {"ca.pem"} | {f"{name}.{ext}" for name in certified for ext in ("pem", "key")}
    for name in tls:
        need(name in base, f"docker-compose.tls.yml names {name}, which docker-compose.yml has not")
    for name in SERVICES:
        overlay = tls.get(name, {})
        env = {**base.get(name, {}).get("environment", {}), **overlay.get("environment", {})}
        need("./certs:/certs:ro" in overlay.get("volumes", []), f"{name} does not mount ./certs read-only")
        for variable, value in env.items():
            if variable.startswith("TLS_") and variable.endswith("_FILE"):
                file = str(value).removeprefix("/certs/")
                need(file in written, f"{name}'s {variable} names {value}, which stack certs does not write")
                if file != "ca.pem":
                    need(file.rsplit(".", 1)[0] == name, f"{name}'s {variable} is another service's: {value}")
        if name != "gateway":
            need(all(f"TLS_{part}_FILE" in env for part in ("CERT", "KEY", "CLIENT_CA")),
                 f"{name} does not serve mutual TLS")
    for name, (port, callers) in SCALED.items():
        for caller, variable in callers.items():
            env = {**base.get(caller, {}).get("environment", {}),
                   **tls.get(caller, {}).get("environment", {})}
            need(str(env.get(variable)) == f"https://{name}:{port}",
                 f"{caller}'s {variable} is not https://{name}:{port} under TLS")
            need(all(f"TLS_{part}_FILE" in env for part in ("CA", "CLIENT_CERT", "CLIENT_KEY")),
                 f"{caller} does not verify {name} and present its own certificate")
    auth = tls.get("auth-service", {}).get("environment", {})
    for variable in ("REVOCATION_HOLDERS", "TRUSTED_FRONTENDS"):
        for identity in str(auth.get(variable, "")).split(","):
            need(identity.strip() in certified, f"auth's {variable} names {identity!r}, which has no certificate")
    return problems


if __name__ == "__main__":
    report("docker-compose", check() + check_tls(),
           "docker-compose.yml, docker-compose.tls.yml and Dockerfile: OK")
