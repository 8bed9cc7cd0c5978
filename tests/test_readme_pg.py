"""The README's shared-store set-up works, line by line, on a real PostgreSQL server.

The block's ``createuser``/``createdb`` lines run with the server's own binaries against the test
cluster (``--pwprompt`` answered by setting the password in SQL), the ``.pgpass`` line is written
with the cluster's port and the role's real password, ``KETADOSE_STORE`` is exported, and every
``ketadose`` line runs as a process, with ``db.clinic:5432`` read as the test cluster (which has
no TLS: ``sslmode=verify-full`` becomes ``disable``). The set-up must end in a sound store whose
clinicians act as themselves.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import Cluster

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
(SETUP,) = [b for b in re.findall(r"```bash\n(.*?)```", README, re.DOTALL) if "createdb" in b]
KETADOSE = [sys.executable, "-m", "ketadose"]


def lines() -> list[str]:
    """The block's commands, without their comments."""
    found = []
    for line in SETUP.splitlines():
        command = line.split("  #")[0].strip()
        if command and not command.startswith("#"):
            found.append(command)
    return found


def test_the_block_is_what_a_clinic_runs() -> None:
    commands = [shlex.split(line.partition(" && ")[0])[0] for line in lines()]
    assert commands == [
        "createuser",
        "createuser",
        "createdb",
        "createuser",
        "ketadose",
        "echo",
        "export",
        "ketadose",
        "ketadose",
    ]
    assert not re.search(r"postgresql://[^@/\s]*:[^@/\s]*@", SETUP), "no password in a URL"


@pytest.mark.postgresql
def test_the_shared_store_is_set_up_as_the_readme_says(pg_cluster: Cluster, tmp_path: Path) -> None:
    here = f"127.0.0.1:{pg_cluster.port}"
    binaries = pg_cluster.bindir
    passwords: dict[str, str] = {}
    env = {
        **os.environ,
        "PGPASSFILE": str(tmp_path / "pgpass"),
        "PYTHONPATH": str(ROOT),
        "KETADOSE_TZ": "Europe/Berlin",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("KETADOSE_STORE", None)

    def remember(entry: str) -> None:
        pgpass = tmp_path / "pgpass"
        with pgpass.open("a", encoding="utf-8") as handle:
            handle.write(entry + "\n")
        pgpass.chmod(0o600)

    try:
        for line in lines():
            words = shlex.split(
                line.replace("db.clinic:5432", here).replace("verify-full", "disable")
            )
            if words[0] in ("createuser", "createdb"):
                role = words[1]
                if words[0] == "createuser" and role == "ketadose_clinician":
                    with pg_cluster.admin() as conn:  # cluster-wide: other tests made it
                        if conn.execute(
                            "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                        ).fetchone():
                            continue
                asked = "--pwprompt" in words
                words = [w for w in words if w != "--pwprompt"]
                server = ["-h", str(pg_cluster.socket_dir), "-p", str(pg_cluster.port)]
                subprocess.run(
                    [str(binaries / words[0]), *server, "-U", pg_cluster.superuser, *words[1:]],
                    check=True,
                    capture_output=True,
                )
                if asked:
                    passwords[role] = secrets.token_urlsafe(12)
                    with pg_cluster.admin() as conn:
                        conn.execute(f"ALTER ROLE {role} PASSWORD '{passwords[role]}'")
                    if role == "ketadose_owner":  # the owner's own ~/.pgpass
                        remember(f"{here}:ketadose:{role}:{passwords[role]}")
            elif words[0] == "echo":
                remember(words[1].replace("PASSWORD", passwords["alice"]))
            elif words[0] == "export":
                name, _, value = words[1].partition("=")
                env[name] = value
            else:
                result = subprocess.run(
                    [*KETADOSE, *words[1:]], env=env, capture_output=True, text=True, timeout=120
                )
                assert result.returncode == 0, (line, result.stderr)
        # The store is sound, and alice acts as herself: the server's session user.
        check = subprocess.run(
            [*KETADOSE, "clinician", "list", "--json"], env=env, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        assert '"name": "alice"' in check.stdout
        assert '"role": "admin"' in check.stdout
        # The grants hold: alice's own SQL cannot edit the log.
        import psycopg

        with (
            psycopg.connect(
                f"postgresql://alice@{here}/ketadose", password=passwords["alice"]
            ) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("DELETE FROM audit")
    finally:
        with pg_cluster.admin() as conn:
            conn.execute("DROP DATABASE IF EXISTS ketadose WITH (FORCE)")
            for role in ("alice", "ketadose_owner"):
                conn.execute(f"DROP ROLE IF EXISTS {role}")
