#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine: it parses, and it names what the
deployment needs (PostgreSQL and the three services, health checks, start order on healthy
dependencies, settings from the environment, a scalable auth service), and the Dockerfile has
a stage for each service."""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth-service", "inventory-service", "gateway")


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
        need(re.search(rf"^FROM \S+ AS {re.escape(name)}$", dockerfile, re.M) is not None,
             f"the Dockerfile has no stage {name}")
        need(re.search(rf'HEALTHCHECK .*"{re.escape(name)}", "healthcheck"', dockerfile) is not None,
             f"the {name} image has no health check")
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
    return problems


if __name__ == "__main__":
    found = check()
    for problem in found:
        print(f"docker-compose: {problem}")
    if found:
        sys.exit(1)
    print("docker-compose.yml and Dockerfile: OK")
