#!/usr/bin/env python3
"""Checks the OpenAPI document and the docs page of a freshly started release stack.

1. `/api/schema/` validates as OpenAPI 3.0 (`openapi-spec-validator`, installed from PyPI if
   absent).
2. Headless Chromium (Debian's `chromium`; its absence is a failure, not a skip) loads
   `/api/docs/` with every host but 127.0.0.1 refused: names resolve to nothing and every other
   request goes to a proxy at 127.0.0.1:9, where nothing listens, so nothing leaves the machine.
   The page's DOM must hold every operation of the document (Swagger UI gives each an element
   `operations-<tag>-<operationId>` and its path as `data-path`), the page may have asked for no
   other host (Chromium's net log, the requests made for the page; and its console, for a load
   the page's Content-Security-Policy refused before any request), and a screenshot of it must
   be a picture of some size (SCREENSHOT, default a temporary file; kept when named).

Starts the stack as README's tour does (on a temporary DATA_DIR, after checking its ports are
free) and stops it at the end.
"""

import json
import os
import re
import shutil
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
VALIDATOR = "openapi-spec-validator>=0.7,<1"
# Swagger UI fetches the document and renders it; virtual time lets the page settle first.
VIRTUAL_TIME_MS = "30000"
CHROMIUM_TIMEOUT_S = 180
# A rendered page of some thirty operations is far larger than an empty or error page.
MIN_SCREENSHOT_BYTES = 30_000
# The requests Chromium made for a page: their cache key names the page's site, then the URL.
PAGE_REQUEST = re.compile(r'_dk_(\S+) (\S+) ([^"\s]+)"')


def install_validator() -> None:
    try:
        import openapi_spec_validator  # noqa: F401
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             VALIDATOR],
            check=True,
        )


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("docs page: no chromium on PATH (Debian's package `chromium`); .ci/run installs it")


def chromium(binary: str, profile: Path, net_log: Path, *arguments: str) -> tuple[str, str]:
    """Runs headless Chromium on the gateway alone; its standard output, and its log (the page's
    console messages among them)."""
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps",
        # Every name resolves to nothing, and every request but the gateway's goes to a proxy
        # where nothing listens: the page gets the gateway or nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>;127.0.0.1",
        f"--log-net-log={net_log}",
        "--enable-logging=stderr",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--window-size=1280,2400",
        *arguments,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    if run.returncode != 0:
        sys.exit(f"docs page: chromium failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return run.stdout, run.stderr


def foreign_requests(net_log: Path) -> list[str]:
    """The URLs requested for a page of 127.0.0.1 that are not on 127.0.0.1."""
    foreign = set()
    for top_site, frame_site, url in PAGE_REQUEST.findall(net_log.read_text(errors="replace")):
        ours = top_site.startswith("http://127.0.0.1") and frame_site.startswith("http://127.0.0.1")
        if ours and not re.match(r"https?://127\.0\.0\.1[:/]", url):
            foreign.add(url)
    return sorted(foreign)


def check_page(schema: dict, work: Path, screenshot: Path) -> list[str]:
    """What is wrong with the docs page, as Chromium shows it."""
    binary = chromium_binary()
    page = f"{BASE}/api/docs/"
    problems = []
    dom, log = chromium(binary, work / "profile-dom", work / "net-dom.json", "--dump-dom", page)
    _, shot_log = chromium(binary, work / "profile-shot", work / "net-shot.json",
                           f"--screenshot={screenshot}", page)
    (work / "dom.html").write_text(dom)
    for path, methods in schema["paths"].items():
        if f'data-path="{path}"' not in dom:
            problems.append(f"the page does not show {path}")
        for method, operation in methods.items():
            if f'id="operations-default-{operation["operationId"]}"' not in dom:
                problems.append(f"the page does not show {method.upper()} {path}")
    for net_log in ("net-dom.json", "net-shot.json"):
        for url in foreign_requests(work / net_log):
            problems.append(f"the page asked for another host: {url}")
    # A load the page's Content-Security-Policy refused never reaches the network: the console
    # tells of it.
    for line in (log + shot_log).splitlines():
        if ":CONSOLE" in line and "Content Security Policy" in line:
            problems.append(f"the page tried to load what its policy refuses: {line}")
    size = screenshot.stat().st_size if screenshot.exists() else 0
    is_png = size > 0 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if not is_png or size < MIN_SCREENSHOT_BYTES:
        problems.append(f"the screenshot {screenshot} is no rendered page ({size} bytes)")
    return problems


def validate(schema: dict) -> list[str]:
    from openapi_spec_validator import validate as validate_spec

    try:
        validate_spec(schema)
    except Exception as error:  # the validator's errors have no common base worth naming
        return [f"/api/schema/ is not valid OpenAPI: {error}"]
    return []


def main() -> int:
    refuse_busy_ports("docs page")
    install_validator()
    chromium_binary()
    with tempfile.TemporaryDirectory() as data:
        work = Path(data)
        screenshot = Path(os.environ.get("SCREENSHOT") or work / "docs.png").resolve()
        env = dict(os.environ, DATA_DIR=str(work / "data"))
        stack = start_stack(env, work / "stack.log")
        problems, operations, size = [], 0, 0
        try:
            wait_ready(stack)
            with urllib.request.urlopen(f"{BASE}/api/schema/", timeout=10) as response:
                schema = json.load(response)
            problems += validate(schema)
            problems += check_page(schema, work, screenshot)
            operations = sum(len(methods) for methods in schema["paths"].values())
            size = screenshot.stat().st_size if screenshot.exists() else 0
        finally:
            if stop_stack(stack) is None:
                problems.append(f"the stack did not stop within {STOP_TIMEOUT_S} s")
    for problem in problems:
        print(f"docs page: {problem}", file=sys.stderr)
    if problems:
        print("docs page: FAILED")
        return 1
    print(f"docs page: the document validates; Chromium, offline, shows all {operations} "
          f"operations ({size} byte screenshot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
