"""A private PostgreSQL 15 with pg_stat_statements preloaded, in a temp dir, on a free loopback port.

Roles: `postgres` (superuser, trusted on loopback), `app` and `other` (passwords required), and the
database `shorts` with the pg_stat_statements extension created.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.servers.net import HOST, free_port, wait_until
from tests.servers.process import Server, as_user, give_to, unprivileged_user

BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORDS = {"app": "app-password", "other": "other-password"}

HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = unprivileged_user()
        self.server: Server | None = None

    def dsn(self, user: str = "postgres", dbname: str = "shorts") -> str:
        """A DSN without a password, as the profile holds it."""
        return f"host={HOST} port={self.port} dbname={dbname} user={user}"

    def session(self, role: str) -> psycopg.Connection:
        """A new autocommit session of `role` (as an application's pool would hold)."""
        return psycopg.connect(self.dsn(role), password=PASSWORDS.get(role), autocommit=True)

    def live_pids(self) -> set[int]:
        """The client sessions alive now, not counting the one that asks."""
        query = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> %s"
        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            return {row[0] for row in admin.execute(query, [admin.info.backend_pid])}

    def start(self) -> PostgresServer:
        give_to(self.dir, self.user)
        initdb = [
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-instructions",
        ]
        self._as_user(initdb)
        (self.data / "pg_hba.conf").write_text(HBA)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '{HOST}'\nunix_socket_directories = '{self.dir}'\n"
                "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
            )
        log = self.dir / "postgres.log"
        log.touch()
        give_to(self.dir, self.user)
        self.server = Server("postgres", [str(BIN / "postgres"), "-D", str(self.data)], log, self.user)
        wait_until(self._accepts, 30, "PostgreSQL", str(log))
        self._provision()
        return self

    def _as_user(self, argv: list[str]) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.dir, **as_user(self.user))
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def _accepts(self) -> bool:
        assert self.server is not None
        if not self.server.alive():
            raise RuntimeError(f"PostgreSQL exited; see {self.server.log}")
        try:
            psycopg.connect(self.dsn(dbname="postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def _provision(self) -> None:
        with psycopg.connect(self.dsn(dbname="postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shorts")
            for role, password in PASSWORDS.items():
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("GRANT pg_read_all_stats TO app")
            conn.execute("CREATE TABLE videos (id serial PRIMARY KEY, title text NOT NULL)")
            conn.execute("INSERT INTO videos (title) SELECT 'video ' || g FROM generate_series(1, 50) g")
            conn.execute("GRANT SELECT, INSERT ON videos TO app")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(signal.SIGINT)  # "fast" shutdown: disconnects clients, no waiting for them
        shutil.rmtree(self.dir, ignore_errors=True)
