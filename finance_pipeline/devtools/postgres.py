"""A throw-away PostgreSQL server on a loopback port, for tests and local trials.

    with local_postgres(tmp_dir) as pg:
        pg.dsn  # postgresql://finance:<password>@127.0.0.1:<port>/finance

The server binaries come from the machine: `pg_ctl`/`initdb` on PATH or under
/usr/lib/postgresql/<version>/bin (Debian/Ubuntu). When they are missing and apt-get can be used
(root, Debian-like), `ensure_binaries(install=True)` installs the `postgresql` package first. The
cluster lives in a temporary directory, listens on 127.0.0.1 only with trust authentication for
one role (a random password over TCP, as a real server would ask; trust on its private Unix socket
only, for set-up), and is stopped (fast shutdown) on exit. PostgreSQL refuses to run as root, so as root
the cluster is owned by and run as the `postgres` system user, in a directory of its own under the
shared temp dir (removed on exit) instead of `root`.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, and they could not be installed."""


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


def ensure_binaries(install: bool = False) -> Path:
    """The directory holding initdb/pg_ctl, installing the distribution's package if allowed."""
    found = _bin_dir()
    if found:
        return found
    if install and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise PostgresUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-400:]}")
        found = _bin_dir()
        if found:
            return found
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql; "
        "install the 'postgresql' package (apt-get install postgresql) to run the Postgres tests")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LocalPostgres:
    host: str
    port: int
    user: str
    database: str
    password: str = ""

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def env(self, prefix: str = "FINANCE_PG_", database: str | None = None) -> dict[str, str]:
        return {f"{prefix}HOST": self.host, f"{prefix}PORT": str(self.port), f"{prefix}USER": self.user,
                f"{prefix}DATABASE": database or self.database, f"{prefix}PASSWORD": self.password}

    def create_database(self, name: str) -> str:
        """A fresh database on this server (dropped first if it exists); returns its name."""
        import psycopg2

        con = psycopg2.connect(self.dsn)
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
                cur.execute(f'create database "{name}"')
        finally:
            con.close()
        return name


@contextmanager
def local_postgres(root: Path, *, install: bool = False, user: str = "finance",
                   database: str = "finance") -> Iterator[LocalPostgres]:
    bin_dir = ensure_binaries(install)
    prefix: list[str] = []
    cleanup: Path | None = None
    if os.geteuid() == 0:
        import pwd

        # the cluster's owner must reach its directory: pytest's and most private temp dirs are
        # 0700 root, so the cluster gets its own directory under the shared temp dir
        owner = pwd.getpwnam("postgres")
        root = cleanup = Path(tempfile.mkdtemp(prefix="finance-pg-"))
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(root)
    data, sockets = root / "pgdata", root / "pgsock"
    sockets.mkdir(parents=True, exist_ok=True)
    if prefix:
        os.chown(sockets, owner.pw_uid, owner.pw_gid)

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-600:]}")

    import secrets

    port = _free_port()
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if prefix:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth-local=trust", "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-sync")
    pwfile.unlink()
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
               "-c timezone=UTC -c max_connections=200")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "postgres.log"), "-w", "start")
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run([*prefix, str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the PostgreSQL server did not become ready within 30 s")
            time.sleep(0.2)
        run(str(bin_dir / "createdb"), "-h", str(sockets), "-p", str(port), "-U", user, database)
        yield LocalPostgres("127.0.0.1", port, user, database, password)
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
