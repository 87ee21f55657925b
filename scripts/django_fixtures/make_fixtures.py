#!/usr/bin/env python3
"""Generate Django/DRF fixtures with a REAL Django install, for `import-django` tests.

Run with a Python that has Django 5.x, djangorestframework, argon2-cffi and bcrypt
installed (see README.md / requirements.txt next to this file):

    /tmp/djvenv/bin/python scripts/django_fixtures/make_fixtures.py

The script builds a throwaway Django project in a temp dir (SQLite db there),
runs makemigrations + migrate through call_command, creates rows with known
passwords, and writes `manage.py dumpdata --indent 2` output into:

    auth-service/tests/fixtures/django/auth_users.json      (pass A: auth.user + authtoken.token)
    auth-service/tests/fixtures/django/custom_users.json    (pass B: accounts.user + authtoken.token)
    auth-service/tests/fixtures/django/passwords.json       (plaintexts, token keys, versions)
    auth-service/tests/fixtures/django/hasher_vectors.json  (verified hasher vectors)
    inventory-service/tests/fixtures/django/products.json   (inventory.product)
    inventory-service/tests/fixtures/django/shop_items.json (shop.item)

A project has exactly one AUTH_USER_MODEL, so the work runs as two subprocesses:
pass A (default auth.User) and pass B (AUTH_USER_MODEL = "accounts.User").
Salts, token keys and timestamps of tokens are random; everything else is fixed.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AUTH_DIR_REL = Path("auth-service/tests/fixtures/django")
INV_DIR_REL = Path("inventory-service/tests/fixtures/django")

HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
]

# ---------------------------------------------------------------------------
# Source of the throwaway project's apps (written into the temp dir).
# ---------------------------------------------------------------------------
def django_app(label: str, models: str) -> dict[str, str]:
    """One app of the throwaway project: its package, its migrations package, its AppConfig
    (`<Label>Config`, named `label`) and `models` as its models.py."""
    return {
        f"{label}/__init__.py": "",
        f"{label}/migrations/__init__.py": "",
        f"{label}/apps.py": f"""
        from django.apps import AppConfig


        class {label.capitalize()}Config(AppConfig):
            default_auto_field = "django.db.models.BigAutoField"
            name = "{label}"
    """,
        f"{label}/models.py": models,
    }


APP_FILES = {
    **django_app(
        "accounts",
        """
        from django.contrib.auth.models import AbstractUser
        from django.db import models


        class User(AbstractUser):
            ROLE_CHOICES = [
                ("CLERK", "Clerk"),
                ("MANAGER", "Manager"),
                ("ADMIN", "Admin"),
            ]
            role = models.CharField(max_length=10, choices=ROLE_CHOICES, default="CLERK")
    """,
    ),
    **django_app(
        "inventory",
        """
        from django.db import models


        class Product(models.Model):
            name = models.CharField(max_length=200)
            description = models.TextField(blank=True)
            price = models.DecimalField(max_digits=10, decimal_places=2)
            quantity = models.PositiveIntegerField(default=0)
    """,
    ),
    **django_app(
        "shop",
        """
        from django.db import models


        class Item(models.Model):
            name = models.CharField(max_length=100)
            price = models.DecimalField(max_digits=10, decimal_places=2)
            stock = models.IntegerField(default=0)
    """,
    ),
}


def write_project(root: Path) -> None:
    for rel, body in APP_FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")


def setup_django(root: Path, pass_name: str) -> None:
    sys.path.insert(0, str(root))
    from django.conf import settings

    apps = [
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "rest_framework.authtoken",
        "inventory",
        "shop",
    ]
    extra = {}
    if pass_name == "B":
        # accounts.User clashes with auth.User (groups/user_permissions reverse
        # accessors) unless it *is* the user model, so it is only installed here.
        apps.append("accounts")
        extra["AUTH_USER_MODEL"] = "accounts.User"
    settings.configure(
        DEBUG=False,
        SECRET_KEY="fixture-generator-not-secret",
        INSTALLED_APPS=apps,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(root / "db.sqlite3"),
            }
        },
        PASSWORD_HASHERS=HASHERS,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        TIME_ZONE="UTC",
        **extra,
    )
    import django

    django.setup()
    from django.core.management import call_command

    labels = ["inventory", "shop"] + (["accounts"] if pass_name == "B" else [])
    call_command("makemigrations", *labels, verbosity=0, interactive=False)
    call_command("migrate", verbosity=0, interactive=False)


def ts(s: str) -> dt.datetime:
    """Fixed, timezone-aware timestamp (so date_joined etc. are stable)."""
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)


def dump(labels, out_path: Path) -> None:
    from django.core.management import call_command

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Same as `manage.py dumpdata LABELS --indent 2 -o out_path`.
    call_command("dumpdata", *labels, indent=2, output=str(out_path), verbosity=0)
    json.loads(out_path.read_text(encoding="utf-8"))  # must be valid JSON


def create_user(User, spec):
    from django.contrib.auth.hashers import check_password, make_password

    u = User(
        username=spec["username"],
        email=spec.get("email", ""),
        first_name=spec.get("first_name", ""),
        last_name=spec.get("last_name", ""),
        is_staff=spec.get("is_staff", False),
        is_superuser=spec.get("is_superuser", False),
        is_active=spec.get("is_active", True),
        date_joined=spec["date_joined"],
        last_login=spec.get("last_login"),
    )
    if "role" in spec:
        u.role = spec["role"]
    if spec.get("password") is None:
        u.set_unusable_password()
    else:
        u.password = make_password(spec["password"], hasher=spec["hasher"])
        assert u.password.startswith(spec["hasher"] + "$"), u.password
        assert check_password(spec["password"], u.password)
        assert not check_password(spec["password"] + "x", u.password)
    u.save()
    return u


def make_tokens(users_by_name, names):
    from rest_framework.authtoken.models import Token

    keys = {}
    for i, n in enumerate(names):
        tok = Token.objects.create(user=users_by_name[n])  # random 40-hex key
        # `created` is auto_now_add; pin it so re-runs only differ in keys/salts.
        Token.objects.filter(pk=tok.pk).update(
            created=ts("2024-03-%02dT12:00:00.%06d" % (i + 1, 111111 * (i + 1))))
        keys[n] = tok.key
    return keys


def record_users(specs, users, tokens, fixture):
    out = {}
    for s in specs:
        out[s["username"]] = {
            "password": s.get("password"),
            "hasher": s.get("hasher") if s.get("password") is not None else None,
            "token": tokens.get(s["username"]),
            "pk": users[s["username"]].pk,
            "fixture": fixture,
        }
    return out


# ---------------------------------------------------------------------------
# Pass A: default auth.User, products, shop items, hasher vectors.
# ---------------------------------------------------------------------------
PASS_A_USERS = [
    dict(username="alice", hasher="pbkdf2_sha256", password="alice-Pass-1",
         email="alice@example.com", first_name="Alice", last_name="Liddell",
         date_joined=ts("2023-03-01T09:15:30.123456"),
         last_login=ts("2024-05-20T17:45:00.654321")),
    dict(username="bob", hasher="pbkdf2_sha1", password="bob-Pass-2", email="",
         date_joined=ts("2023-03-02T10:00:00")),
    dict(username="carol", hasher="argon2", password="carol-Pass-3",
         email="carol@example.com", date_joined=ts("2023-04-10T08:00:00.5")),
    dict(username="dave", hasher="bcrypt_sha256", password="dave-Pass-4",
         email="dave@example.com", date_joined=ts("2023-05-05T12:30:45")),
    # Deleted again right after creation: leaves a gap in auth_user ids.
    dict(username="temp-deleted", hasher="pbkdf2_sha256", password="deleted-Pass",
         date_joined=ts("2023-05-06T00:00:00"), _delete=True),
    dict(username="erin", password=None, email="erin@example.com",
         date_joined=ts("2023-06-01T00:00:00")),
    dict(username="root", hasher="pbkdf2_sha256", password="root-Pass-5",
         email="root@example.com", is_staff=True, is_superuser=True,
         date_joined=ts("2022-12-31T23:59:59.999999"),
         last_login=ts("2024-06-01T06:00:00")),
    dict(username="staffer", hasher="pbkdf2_sha256", password="staff-Pass-6",
         email="staff@example.com", is_staff=True,
         date_joined=ts("2023-07-07T07:07:07")),
    dict(username="ghost", hasher="pbkdf2_sha256", password="ghost-Pass-7",
         email="ghost@example.com", is_active=False,
         date_joined=ts("2023-08-08T08:08:08")),
    dict(username="zoë", hasher="pbkdf2_sha256", password="pässwörd-8",
         email="zoe@example.com", first_name="Zoë", last_name="Ångström",
         date_joined=ts("2023-09-09T09:09:09.000001")),
]
PASS_A_TOKENS = ["alice", "carol", "dave", "root"]

PRODUCTS = [
    dict(name="Widget", description="A small widget.\nSecond line, with \"quotes\" & ünïcödé.",
         price="19.99", quantity=42),
    dict(name="Deleted gadget", description="", price="5.00", quantity=1, _delete=True),
    dict(name="Washer", description="", price="0.50", quantity=1000),
    dict(name="Industrial press", description="", price="1234.00", quantity=0),
    dict(name="Café crème", description="Non-ASCII name.", price="99999999.99", quantity=7),
]
ITEMS = [
    dict(name="Apple", price="0.99", stock=150),
    dict(name="Deleted banana", price="0.25", stock=3, _delete=True),
    dict(name="Cheese wheel", price="45.10", stock=-2),  # IntegerField: may be negative
    dict(name="Bread", price="3.00", stock=0),
]


def pass_a(out_root: Path, result_path: Path) -> None:
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    User = get_user_model()
    assert User._meta.label == "auth.User"
    users = {}
    deleted_user_ids = []
    for s in PASS_A_USERS:
        u = create_user(User, s)
        if s.get("_delete"):
            deleted_user_ids.append(u.pk)
            u.delete()
        else:
            users[s["username"]] = u
    tokens = make_tokens(users, PASS_A_TOKENS)

    from inventory.models import Product
    from shop.models import Item

    deleted_product_ids, deleted_item_ids = [], []
    for p in PRODUCTS:
        obj = Product.objects.create(
            name=p["name"], description=p["description"],
            price=Decimal(p["price"]), quantity=p["quantity"])
        if p.get("_delete"):
            deleted_product_ids.append(obj.pk)
            obj.delete()
    for i in ITEMS:
        obj = Item.objects.create(name=i["name"], price=Decimal(i["price"]), stock=i["stock"])
        if i.get("_delete"):
            deleted_item_ids.append(obj.pk)
            obj.delete()

    specs = [s for s in PASS_A_USERS if not s.get("_delete")]
    dump(["auth.user", "authtoken.token"], out_root / AUTH_DIR_REL / "auth_users.json")
    dump(["inventory.product"], out_root / INV_DIR_REL / "products.json")
    dump(["shop.item"], out_root / INV_DIR_REL / "shop_items.json")

    vectors = hasher_vectors()
    (out_root / AUTH_DIR_REL / "hasher_vectors.json").write_text(
        json.dumps(vectors, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    result = {
        "users": record_users(specs, users, tokens, "auth_users.json"),
        "product_ids": list(Product.objects.order_by("pk").values_list("pk", flat=True)),
        "item_ids": list(Item.objects.order_by("pk").values_list("pk", flat=True)),
        "deleted_user_ids": deleted_user_ids,
        "deleted_product_ids": deleted_product_ids,
        "deleted_item_ids": deleted_item_ids,
        "vector_count": len(vectors),
    }
    result_path.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------
# Hasher vectors.
# ---------------------------------------------------------------------------
# Literal vectors asserted in Django's own tests/auth_tests/test_hashers.py.
# check_password() reads the cost parameters from the encoded string, so these
# verify on any Django version even though the default iteration count moved on.
DJANGO_TEST_VECTORS = [
    # Django 4.1-era test_hashers.py (commit 02dbf1667c6da61ea9346f7c9f174a158b896811)
    ("pbkdf2_sha256", "lètmein",
     "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
     "test_pbkdf2 @ 02dbf1667c6d"),
    ("pbkdf2_sha256", "lètmein",
     "pbkdf2_sha256$390000$seasalt2$geC/uZ92nRXDSjSxeoiBqYyRcrLzMm8xK3ro1QS1uo8=",
     "test_low_level_pbkdf2 @ 02dbf1667c6d"),
    ("pbkdf2_sha1", "lètmein",
     "pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I=",
     "test_low_level_pbkdf2_sha1 @ 02dbf1667c6d"),
    ("argon2", "secret",
     "argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO"
     "4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg",
     "test_argon2, old hash without version attribute (argon2 v=0x10)"),
    ("argon2", "secret",
     "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
     "test_argon2, old argon2i hash with version attribute"),
    ("argon2", "secret",
     "argon2$argon2id$v=19$m=102400,t=2,p=8$Y041dExhNkljRUUy$TMa6A8fPJhCAUXRhJXCXdw",
     "test_argon2_version_upgrade"),
    # Django 1.10-era test_hashers.py (commit d7087c398d7234b0a49417ce9409cd6c7807e86f)
    ("pbkdf2_sha256", "lètmein",
     "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY=",
     "test_pbkdf2 @ d7087c398d72"),
    ("pbkdf2_sha256", "lètmein",
     "pbkdf2_sha256$30000$seasalt2$a75qzbogeVhNFeMqhdgyyoqGKpIzYUo651sq57RERew=",
     "test_low_level_pbkdf2 @ d7087c398d72"),
    ("pbkdf2_sha1", "lètmein",
     "pbkdf2_sha1$30000$seasalt2$pMzU1zNPcydf6wjnJFbiVKwgULc=",
     "test_low_level_pbkdf2_sha1 @ d7087c398d72"),
]
# (Django's tests have no literal bcrypt_sha256 hash: those tests only round-trip.)


def is_slow(algorithm: str, encoded: str) -> bool:
    """True when verifying costs production-grade work (skip in debug builds)."""
    if algorithm.startswith("pbkdf2"):
        return int(encoded.split("$")[1]) >= 100_000
    if algorithm == "argon2":
        params = encoded.split("$")[-3]
        m = int(dict(kv.split("=") for kv in params.split(","))["m"])
        return m >= 8192
    if algorithm == "bcrypt_sha256":
        return int(encoded.split("$")[3]) >= 10  # bcrypt_sha256$$2b$NN$...
    return False


def hasher_vectors():
    import django
    from django.contrib.auth.hashers import (
        Argon2PasswordHasher,
        BCryptSHA256PasswordHasher,
        PBKDF2PasswordHasher,
        PBKDF2SHA1PasswordHasher,
        check_password,
        make_password,
    )

    gen = "generated Django %s" % ".".join(map(str, django.VERSION[:2]))
    out = []

    def add(algorithm, password, encoded, source, note):
        assert encoded.startswith(algorithm + "$"), encoded
        assert check_password(password, encoded), (algorithm, password, encoded)
        assert not check_password(password + "x", encoded), (algorithm, encoded)
        out.append({
            "algorithm": algorithm,
            "password": password,
            "encoded": encoded,
            "source": source,
            "note": note,
            "slow": is_slow(algorithm, encoded),
        })

    for algorithm, password, encoded, note in DJANGO_TEST_VECTORS:
        add(algorithm, password, encoded, "django-tests", note)

    # Default-cost vectors (what a real Django 5.x database holds).
    default_iters = PBKDF2PasswordHasher.iterations
    add("pbkdf2_sha256", "lètmein",
        make_password("lètmein", "seasalt", "pbkdf2_sha256"), gen,
        "make_password('lètmein', 'seasalt', 'pbkdf2_sha256'), default %d iterations"
        % default_iters)

    for cls, algo in ((PBKDF2PasswordHasher, "pbkdf2_sha256"),
                      (PBKDF2SHA1PasswordHasher, "pbkdf2_sha1")):
        h = cls()
        add(algo, "correct horse battery staple",
            make_password("correct horse battery staple", hasher=algo), gen,
            "make_password(hasher=%r), default cost, random salt" % algo)
        add(algo, "pässwörd-ß-日本語",
            h.encode("pässwörd-ß-日本語", h.salt(), iterations=1000), gen,
            "hasher.encode(..., iterations=1000), non-ASCII password")
        add(algo, "x", h.encode("x", "fixedsalt123", iterations=1000), gen,
            "hasher.encode('x', 'fixedsalt123', iterations=1000), 1-char password")

    a = Argon2PasswordHasher()
    add("argon2", "correct horse battery staple",
        make_password("correct horse battery staple", hasher="argon2"), gen,
        "make_password(hasher='argon2'), default cost (m=%d,t=%d,p=%d)"
        % (a.memory_cost, a.time_cost, a.parallelism))
    low = Argon2PasswordHasher()
    low.time_cost, low.memory_cost, low.parallelism = 1, 64, 1
    add("argon2", "pässwörd-ß-日本語", low.encode("pässwörd-ß-日本語", low.salt()), gen,
        "Argon2PasswordHasher with m=64,t=1,p=1, non-ASCII password")
    add("argon2", "x", low.encode("x", "fixedsalt123"), gen,
        "Argon2PasswordHasher with m=64,t=1,p=1, salt 'fixedsalt123', 1-char password")

    b = BCryptSHA256PasswordHasher()
    add("bcrypt_sha256", "correct horse battery staple",
        make_password("correct horse battery staple", hasher="bcrypt_sha256"), gen,
        "make_password(hasher='bcrypt_sha256'), default %d rounds" % b.rounds)
    lowb = BCryptSHA256PasswordHasher()
    lowb.rounds = 4
    add("bcrypt_sha256", "pässwörd-ß-日本語", lowb.encode("pässwörd-ß-日本語", lowb.salt()), gen,
        "BCryptSHA256PasswordHasher with rounds=4, non-ASCII password")
    long_pw = "L" * 100  # > 72 bytes: bcrypt_sha256 prehashes, so no truncation
    add("bcrypt_sha256", long_pw, lowb.encode(long_pw, lowb.salt()), gen,
        "rounds=4, 100-char password (longer than bcrypt's 72-byte limit)")
    assert not check_password(long_pw[:72], out[-1]["encoded"])
    add("bcrypt_sha256", "x", lowb.encode("x", lowb.salt()), gen,
        "rounds=4, 1-char password")
    return out


# ---------------------------------------------------------------------------
# Pass B: AUTH_USER_MODEL = accounts.User with a role field.
# ---------------------------------------------------------------------------
PASS_B_USERS = [
    dict(username="kim.clerk", hasher="pbkdf2_sha256", password="kim-Clerk-1",
         email="kim@example.com", first_name="Kim", last_name="Clerk",
         date_joined=ts("2024-01-02T03:04:05.678901")),  # role left to default CLERK
    dict(username="mona_manager", hasher="pbkdf2_sha256", password="mona-Manager-2",
         email="mona@example.com", role="MANAGER",
         date_joined=ts("2024-01-03T00:00:00"),
         last_login=ts("2024-02-01T12:00:00.25")),
    dict(username="adam-admin", hasher="pbkdf2_sha256", password="adam-Admin-3",
         email="adam@example.com", role="ADMIN", is_staff=True, is_superuser=True,
         date_joined=ts("2024-01-04T00:00:00")),
    dict(username="paul@shop", hasher="pbkdf2_sha256", password="paul-Clerk-4",
         email="", role="CLERK", date_joined=ts("2024-01-05T00:00:00")),
]
PASS_B_TOKENS = ["mona_manager"]


def pass_b(out_root: Path, result_path: Path) -> None:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    assert User._meta.label == "accounts.User"
    users = {s["username"]: create_user(User, s) for s in PASS_B_USERS}
    assert users["kim.clerk"].role == "CLERK"
    tokens = make_tokens(users, PASS_B_TOKENS)
    dump(["accounts.user", "authtoken.token"], out_root / AUTH_DIR_REL / "custom_users.json")
    result = {"users": record_users(PASS_B_USERS, users, tokens, "custom_users.json")}
    result_path.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------
def run_pass(pass_name: str, out_root: Path, tmp: Path) -> dict:
    result_path = tmp / ("result_%s.json" % pass_name)
    env = dict(os.environ, PYTHONUTF8="1", PYTHONHASHSEED="0")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--pass", pass_name,
         "--out-root", str(out_root), "--result", str(result_path)],
        check=True, env=env)
    return json.loads(result_path.read_text(encoding="utf-8"))


def check_outputs(out_root: Path, passwords: dict) -> None:
    """Re-read every dump and check the plaintexts against the dumped hashes."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(PASSWORD_HASHERS=HASHERS, USE_TZ=True)
    from django.contrib.auth.hashers import check_password, is_password_usable

    for fname in ("auth_users.json", "custom_users.json"):
        data = json.loads((out_root / AUTH_DIR_REL / fname).read_text(encoding="utf-8"))
        users = {r["fields"]["username"]: r for r in data if r["model"].endswith(".user")}
        toks = {r["fields"]["user"]: r["pk"] for r in data if r["model"] == "authtoken.token"}
        for name, info in passwords["users"].items():
            if info["fixture"] != fname:
                continue
            rec = users[name]
            assert rec["pk"] == info["pk"], name
            enc = rec["fields"]["password"]
            if info["password"] is None:
                assert not is_password_usable(enc), name
            else:
                assert check_password(info["password"], enc), name
            if info["token"]:
                assert toks[rec["pk"]] == info["token"], name
    for fname in ("products.json", "shop_items.json"):
        json.loads((out_root / INV_DIR_REL / fname).read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-root", default=str(REPO_ROOT),
                    help="repository root to write fixtures under (default: this repo)")
    ap.add_argument("--pass", dest="pass_name", choices=["A", "B"], help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out_root = Path(args.out_root).resolve()

    if args.pass_name:  # child process: one Django project
        with tempfile.TemporaryDirectory(prefix="djfix_%s_" % args.pass_name) as d:
            root = Path(d)
            write_project(root)
            setup_django(root, args.pass_name)
            (pass_a if args.pass_name == "A" else pass_b)(out_root, Path(args.result))
        return

    import django
    import rest_framework

    with tempfile.TemporaryDirectory(prefix="djfix_") as d:
        ra = run_pass("A", out_root, Path(d))
        rb = run_pass("B", out_root, Path(d))

    def version(mod):
        from importlib.metadata import version as v
        return v(mod)

    users = {}
    users.update(ra["users"])
    users.update(rb["users"])
    passwords = {
        "versions": {
            "django": django.get_version(),
            "djangorestframework": rest_framework.VERSION,
            "argon2-cffi": version("argon2-cffi"),
            "bcrypt": version("bcrypt"),
            "python": "%d.%d.%d" % sys.version_info[:3],
        },
        "passwords": {n: u["password"] for n, u in users.items()},
        "tokens": {n: u["token"] for n, u in users.items() if u["token"]},
        "users": users,
        "notes": [
            "passwords[username] is null for users with an unusable password ('!' + 40 chars).",
            "users[username].fixture names the dumpdata file holding that user.",
            "auth_users.json: auth.User (pass A); custom_users.json: accounts.User with role (pass B).",
            "auth.User ids %s, inventory.Product ids %s and shop.Item ids %s were deleted "
            "on purpose, so ids are non-contiguous (id preservation is testable)."
            % (ra["deleted_user_ids"], ra["deleted_product_ids"], ra["deleted_item_ids"]),
        ],
    }
    path = out_root / AUTH_DIR_REL / "passwords.json"
    path.write_text(json.dumps(passwords, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    check_outputs(out_root, passwords)

    print("Django %s, DRF %s" % (django.get_version(), rest_framework.VERSION))
    for rel in (AUTH_DIR_REL / "auth_users.json", AUTH_DIR_REL / "custom_users.json",
                AUTH_DIR_REL / "passwords.json", AUTH_DIR_REL / "hasher_vectors.json",
                INV_DIR_REL / "products.json", INV_DIR_REL / "shop_items.json"):
        data = json.loads((out_root / rel).read_text(encoding="utf-8"))
        n = len(data) if isinstance(data, list) else len(data.get("users", {}))
        print("  wrote %-55s %3d %s" % (rel, n, "records" if isinstance(data, list) else "users"))
    print("  users: %d (pass A) + %d (pass B); tokens: %d; product ids %s; item ids %s; vectors %d"
          % (len(ra["users"]), len(rb["users"]), len(passwords["tokens"]),
             ra["product_ids"], ra["item_ids"], ra["vector_count"]))


if __name__ == "__main__":
    main()
