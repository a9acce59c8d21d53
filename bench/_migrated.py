"""A migrated PostgreSQL database to copy: `CREATE DATABASE … TEMPLATE` takes 0.3 s where `manage.py migrate` on an
empty database takes about 8 s.

The test databases (tests/conftest.py) and the benches' scratch databases (_harness.reset_database) start as copies
of one template, named after a hash of what shapes the schema: the migrations' files, vccweb/settings.py and the
installed packages' versions. A change to any of them makes a new template; the newest three are kept.
It is made once, under an advisory lock (the test processes start together), by `manage.py migrate` into a database
of its own, renamed to the template's name only once complete: a failed or interrupted migrate leaves no template.
Whoever copies it still runs `migrate`, which then finds nothing to apply. `shell_env` is what the processes the
benches start take from the shell."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "vccweb_template_"
LOCK = 0x7CC7E3  # the advisory lock held while a template is looked for and made
KEEP = 3  # templates kept, the newest first


def shell_env() -> dict[str, str]:
    """What a process the benches or the tests start takes from the shell: nothing else leaks in."""
    return {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}


def admin_url(database: dict) -> str:
    """The postgres:// URL of the `postgres` database on the server of a Django DATABASES entry, as its user."""
    user = quote(database["USER"], safe="")
    if database.get("PASSWORD"):
        user += ":" + quote(database["PASSWORD"], safe="")
    return f"postgres://{user}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/postgres"


def key(root: Path = ROOT) -> str:
    """A hash of the migrations, the settings and the installed packages (their own migrations included)."""
    digest = hashlib.sha256()
    for path in [*sorted(root.glob("*/migrations/*.py")), root / "vccweb" / "settings.py"]:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    packages = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions())
    digest.update("\n".join(packages).encode())
    return digest.hexdigest()[:16]


def template(admin_url: str, root: Path = ROOT) -> str:
    """The name of the migrated template for this checkout on the server of `admin_url` (a postgres:// URL of its
    `postgres` database, as a user allowed to create databases), made first when missing."""
    name = PREFIX + key(root)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        try:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                _make(admin, admin_url, name, root)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    return name


def _make(admin: psycopg.Connection, admin_url: str, name: str, root: Path) -> None:
    building = f"{name}_building"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
    env = shell_env() | {
        "DJANGO_SETTINGS_MODULE": "vccweb.settings",
        "PYTHONPATH": str(root),
        "DEBUG": "true",  # no SECRET_KEY needed; the schema does not depend on it
        "DATABASE_URL": urlsplit(admin_url)._replace(path=f"/{building}").geturl(),
        "REDIS_URL": "",
        "VCC_ACCOUNT_KEY": "",
        "LOG_LEVEL": "warning",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
        raise RuntimeError(f"manage.py migrate into {building} failed:\n{done.stdout}{done.stderr}")
    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
    prune(admin)


def prune(admin: psycopg.Connection, prefix: str = PREFIX, keep: int = KEEP) -> None:
    """Drop all but the newest `keep` templates: another checkout of another version (a worktree) may be about to
    copy its own. One being copied refuses the drop, which is fine."""
    older = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname NOT LIKE %s ORDER BY oid DESC OFFSET %s",
        (prefix.replace("_", r"\_") + "%", r"%\_building", keep),
    ).fetchall()
    for (old,) in older:
        with contextlib.suppress(psycopg.Error):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(old)))
