#!/usr/bin/env python3
"""Runs README.md's tour verbatim against a freshly started stack; fails where they disagree.

README marks its blocks with HTML comments: the ```sh block after `<!-- tour:start -->` starts
the stack, every ```sh block after `<!-- tour -->` is part of the tour, and one after
`<!-- no-tour -->` is not; a ```sh block with none of the three directly before it is an error, so
no new block is left out of the tour unseen. The tour's commands run in order in one bash shell
(so variables carry over). A command ending in `# → TEXT` must print exactly TEXT (its output is
the verdict, so it may show a refusal); every other command must succeed, and one that captures a
value (`X=$(...)`) must fail when the value is not there: `curl -fsS`, `jq -e`. The stack then
gets Ctrl-C and must stop cleanly.

The stack's data goes to a temporary DATA_DIR, so the run starts from nothing and leaves nothing.
The stack's ports must be free first: a stack already running there would answer the tour instead.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_URL = "http://127.0.0.1:8000/readyz"
START_TIMEOUT_S = 1200  # the start command may compile the release build first
STOP_TIMEOUT_S = 30
EXPECT = re.compile(r"^(?P<command>.*?)\s+# → (?P<expected>.*)$")
MARKERS = ("tour:start", "tour", "no-tour")
# The gateway's, auth's and inventory's ports with the launcher's defaults.
STACK_PORTS = (8000, 50051, 50052)
CAPTURE = re.compile(r"^\w+=\$\(")


def unmarked_blocks(readme: str) -> list[int]:
    """The line numbers of ```sh blocks without one of MARKERS directly before them."""
    lines = readme.splitlines()
    unmarked, inside = [], False
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if not inside and line.strip() == "```sh":
                previous = next((l.strip() for l in reversed(lines[: number - 1]) if l.strip()), "")
                if previous not in {f"<!-- {marker} -->" for marker in MARKERS}:
                    unmarked.append(number)
            inside = not inside
    return unmarked


def unchecked_captures(commands: list[str]) -> list[str]:
    """Captures (`X=$(...)`) whose curl or jq would let a failure through as a value."""
    return [
        command
        for command in commands
        if CAPTURE.match(command)
        and (
            (re.search(r"\bcurl ", command) and not re.search(r"\bcurl -fsS ", command))
            or re.search(r"\bjq (?!-e)", command)
        )
    ]


def busy_ports(ports: tuple[int, ...] = STACK_PORTS) -> list[int]:
    """The ports of `ports` that a server could not bind on 127.0.0.1 now."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers bind: SO_REUSEADDR, so only a live socket counts, not TIME_WAIT.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def refuse_busy_ports(who: str) -> None:
    """Exits with a clear message when a stack port is taken."""
    busy = busy_ports()
    if busy:
        taken = ", ".join(str(port) for port in busy)
        sys.exit(
            f"{who}: port {taken} on 127.0.0.1 is already in use (another stack running?); "
            "stop it first"
        )


def blocks(readme: str, marker: str) -> list[str]:
    """The ```sh blocks that directly follow `<!-- marker -->`."""
    pattern = re.compile(r"<!-- " + re.escape(marker) + r" -->\s*```sh\n(.*?)```", re.S)
    return pattern.findall(readme)


def logical_lines(block: str) -> list[str]:
    """Lines with backslash continuations joined; comments and blank lines dropped."""
    lines, current = [], ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        line = (current + raw).strip()
        current = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def tour_script(commands: list[str]) -> str:
    """A bash script that runs every command, checking the ones with an expected output."""
    out = [
        "set -euo pipefail",
        'fail() { printf "README tour: %s\\n  expected: %s\\n  got:      %s\\n" "$1" "$2" "$3" >&2; exit 1; }',
    ]
    for command in commands:
        printable = shlex.quote(command)
        out.append(f"printf '$ %s\\n' {printable} >&2")
        match = EXPECT.match(command)
        if match:
            cmd, expected = match["command"], match["expected"].strip()
            out.append(f"__out=$({cmd}) || true")
            out.append('printf "%s\\n" "$__out" >&2')
            out.append(
                f'[ "$__out" = {shlex.quote(expected)} ] || fail {printable} {shlex.quote(expected)} "$__out"'
            )
        else:
            out.append(command)
    return "\n".join(out) + "\n"


def wait_ready(stack: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            sys.exit(f"README tour: the stack exited early with status {stack.returncode}")
        try:
            with urllib.request.urlopen(READY_URL, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    sys.exit(f"README tour: {READY_URL} not ready within {START_TIMEOUT_S} s")


def start_stack(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`cargo run --release` (the stack on its usual ports) in a process group of its own, its
    output in `log`: for the checks that drive the stack from outside."""
    return subprocess.Popen(
        ["cargo", "run", "--release", "--quiet"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
    )


def stop_stack(stack: subprocess.Popen) -> int | None:
    """Ctrl-C to the stack's process group, then its exit status; `None` when it did not stop
    within STOP_TIMEOUT_S (it is killed then)."""
    if stack.poll() is None:
        os.killpg(stack.pid, signal.SIGINT)
    try:
        return stack.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(stack.pid, signal.SIGKILL)
        return None


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    unmarked = unmarked_blocks(readme)
    if unmarked:
        where = ", ".join(f"README.md:{number}" for number in unmarked)
        markers = ", ".join(f"<!-- {marker} -->" for marker in MARKERS)
        sys.exit(f"README tour: a ```sh block needs one of {markers} directly before it: {where}")
    start = blocks(readme, "tour:start")
    tour = blocks(readme, "tour")
    if len(start) != 1 or not tour:
        sys.exit("README tour: expected one tour:start block and at least one tour block")
    start_commands = logical_lines(start[0])
    if len(start_commands) != 1:
        sys.exit("README tour: the start block must hold exactly one command")
    commands = [line for block in tour for line in logical_lines(block)]
    unchecked = unchecked_captures(commands)
    if unchecked:
        sys.exit(
            "README tour: a capture must fail on a missing value (curl -fsS, jq -e):\n  "
            + "\n  ".join(unchecked)
        )
    refuse_busy_ports("README tour")

    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, DATA_DIR=data)
        print(f"$ {start_commands[0]}", flush=True)
        stack = subprocess.Popen(
            ["bash", "-c", f"exec {start_commands[0]}"], cwd=ROOT, env=env, start_new_session=True
        )
        try:
            wait_ready(stack)
            result = subprocess.run(["bash", "-c", tour_script(commands)], cwd=ROOT, env=env)
            if result.returncode != 0:
                return result.returncode
        finally:
            status = stop_stack(stack)
        if status is None:
            sys.exit(f"README tour: the stack did not stop within {STOP_TIMEOUT_S} s of Ctrl-C")
        if status != 0:
            sys.exit(f"README tour: the stack exited with status {status} after Ctrl-C")
    print(f"README tour: {len(commands)} commands ran as documented; the stack stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
