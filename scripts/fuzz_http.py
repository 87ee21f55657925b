#!/usr/bin/env python3
"""Fuzzes the gateway with schemathesis, from its own `/api/schema/`: no request may get a 5xx,
and every answer must be one the document describes (CHECKS: its status is listed for the
operation, its media type and headers are the documented ones, its body matches the schema).

Starts the release stack as README's tour does (on a temporary DATA_DIR, after checking its ports
are free), creates a superuser and logs it in, so that authenticated routes are exercised past
their 401, and runs a bounded number of cases per operation (`FUZZ_MAX_EXAMPLES`, default 100:
about 5,000 cases in all, a minute on 2 cores; `FUZZ_SEED` picks them, default 1).
Routes that revoke the caller's own key (logouts, refresh, password change) run afterwards, each
with a superuser of its own, so that none logs the others out; so does the deletion of a user,
which could delete the fuzzing superuser itself. Installs schemathesis if absent.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_tour import (  # noqa: E402
    STOP_TIMEOUT_S, refuse_busy_ports, start_stack, stop_stack, wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:8000"
SCHEMATHESIS = "schemathesis>=4.32,<5"
ADMIN_PASSWORD = "Fuzz-admin-1"
# No server error, and the document true of every answer.
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
# Deleting a user may delete the fuzzing admin itself (ids start at 1), and every later call
# would only meet a 401: this operation runs apart, last, as the admin of its own.
SELF_DELETING = "delete_users__id__"
# The routes that end the caller's own credentials.
REVOKING = r"/(api/(v1/|users/)?)?logout|/api/logout-all|/api/refresh-token|/api/password/change"


def install_schemathesis() -> None:
    try:
        subprocess.run(["schemathesis", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             SCHEMATHESIS],
            check=True,
        )


def admin_token(env: dict[str, str], username: str) -> str:
    """Creates the superuser `username` (as `createsuperuser` does) and logs it in; its token."""
    subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--", "createsuperuser", "--username", username],
        cwd=ROOT,
        env=dict(env, AUTH_SUPERUSER_PASSWORD=ADMIN_PASSWORD),
        check=True,
    )
    request = urllib.request.Request(
        f"{BASE}/api/login/",
        data=json.dumps({"username": username, "password": ADMIN_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def revoking_paths() -> list[str]:
    """The schema's paths that end the caller's own credentials."""
    with urllib.request.urlopen(f"{BASE}/api/schema/", timeout=10) as response:
        paths = json.load(response)["paths"]
    revoking = [path for path in paths if re.match(REVOKING, path)]
    if not revoking:
        sys.exit("HTTP fuzz: no route of the schema matches the revoking routes' pattern")
    return revoking


def schemathesis(token: str, max_examples: str, *filters: str) -> int:
    command = [
        "schemathesis", "run", f"{BASE}/api/schema/",
        "--checks", CHECKS,
        "--max-examples", max_examples,
        "--header", f"Authorization: Token {token}",
        "--seed", os.environ.get("FUZZ_SEED", "1"),
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
        *filters,
    ]
    print("$ " + " ".join(command).replace(token, "<token>"), flush=True)
    return subprocess.run(command, cwd=ROOT).returncode


def main() -> int:
    refuse_busy_ports("HTTP fuzz")
    install_schemathesis()
    max_examples = os.environ.get("FUZZ_MAX_EXAMPLES", "100")
    with tempfile.TemporaryDirectory() as data:
        # No throttling and no lockout: fuzzed logins would otherwise only meet 429s.
        env = dict(
            os.environ, DATA_DIR=data, THROTTLE_AUTH_RATE="off", LOGIN_LOCKOUT_THRESHOLD="0"
        )
        stack = start_stack(env, Path(data) / "stack.log")
        try:
            wait_ready(stack)
            # A superuser per run: each may change, log out or delete its own account.
            token = admin_token(env, "fuzz-admin")
            status = schemathesis(
                token, max_examples, "--exclude-path-regex", REVOKING,
                "--exclude-operation-id", SELF_DELETING,
            )
            for number, path in enumerate(revoking_paths(), start=1):
                if status != 0:
                    break
                token = admin_token(env, f"fuzz-admin-{number}")
                status = schemathesis(token, max_examples, "--include-path", path)
            if status == 0:
                token = admin_token(env, "fuzz-admin-last")
                status = schemathesis(
                    token, max_examples, "--include-operation-id", SELF_DELETING
                )
        finally:
            if stop_stack(stack) is None:
                print(f"HTTP fuzz: the stack did not stop within {STOP_TIMEOUT_S} s", file=sys.stderr)
                status = 1
        if status != 0:
            log = (Path(data) / "stack.log").read_text()
            print("HTTP fuzz: the stack's log ends with:\n" + "\n".join(log.splitlines()[-40:]))
    print(f"HTTP fuzz: {'no server error, every answer as documented' if status == 0 else 'FAILED'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
