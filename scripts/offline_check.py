"""What the offline checks of the deployment files (check_compose.py, check_kubernetes.py) do
with what they found: every problem on a line of its own, and a failing exit if there was one."""

import sys


def report(prefix: str, problems: list[str], ok: str) -> None:
    for problem in problems:
        print(f"{prefix}: {problem}")
    if problems:
        sys.exit(1)
    print(ok)
