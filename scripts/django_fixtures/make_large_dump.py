#!/usr/bin/env python3
"""Writes a dumpdata-shaped file of N users and N DRF tokens, to time `import-django` at scale.

The records copy the shape of the real `dumpdata` in auth-service/tests/fixtures/django (every
user shares alice's pbkdf2_sha256 hash; usernames, emails and keys are made unique), so no Django
is needed. Usage: make_large_dump.py N > dump.json
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "auth-service/tests/fixtures/django/auth_users.json"


def main() -> None:
    count = int(sys.argv[1])
    template = next(r for r in json.loads(FIXTURE.read_text()) if r["model"] == "auth.user")
    out = sys.stdout
    out.write("[\n")
    for pk in range(1, count + 1):
        fields = dict(template["fields"], username=f"user{pk}", email=f"user{pk}@example.com")
        out.write(json.dumps({"model": "auth.user", "pk": pk, "fields": fields}) + ",\n")
    for pk in range(1, count + 1):
        key = f"{pk:040x}"
        token = {"model": "authtoken.token", "pk": key, "fields": {"user": pk, "created": "2024-01-01T00:00:00Z"}}
        out.write(json.dumps(token) + (",\n" if pk < count else "\n"))
    out.write("]\n")


if __name__ == "__main__":
    main()
