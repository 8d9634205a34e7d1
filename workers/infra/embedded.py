"""Start what the settings leave unconfigured, and find what ``infra up`` left running."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr

from workers.infra.broker import BrokerHandle, pid_alive, start_tansu, stop_pid
from workers.infra.postgres import start_postgres, stop_postgres
from workers.settings import Settings


@dataclass(frozen=True)
class InfraState:
    """What ``infra up`` started, saved so other commands can find it."""

    kafka_bootstrap: str
    database_url: str
    tansu_pid: int
    pgdata: str

    def alive(self) -> bool:
        return pid_alive(self.tansu_pid) and (Path(self.pgdata) / "postmaster.pid").exists()


def _state_file(settings: Settings) -> Path:
    return settings.data_dir / "infra.json"


def read_state(settings: Settings) -> InfraState | None:
    path = _state_file(settings)
    if not path.is_file():
        return None
    state = InfraState(**json.loads(path.read_text()))
    return state if state.alive() else None


def infra_up(settings: Settings) -> InfraState:
    """Start both services detached; idempotent when they already run."""
    existing = read_state(settings)
    if existing is not None:
        return existing
    data = settings.data_dir
    broker = start_tansu(data / "tansu.log", detach=True)
    pg = start_postgres(data / "pg", keep_running=True)
    state = InfraState(broker.bootstrap, pg.dsn, broker.pid, str(pg.pgdata))
    _state_file(settings).write_text(json.dumps(asdict(state), indent=2))
    return state


def infra_down(settings: Settings) -> list[str]:
    stopped: list[str] = []
    path = _state_file(settings)
    if path.is_file():
        state = InfraState(**json.loads(path.read_text()))
        if stop_pid(state.tansu_pid):
            stopped.append(f"Tansu (pid {state.tansu_pid})")
        path.unlink()
    if stop_postgres(settings.data_dir / "pg"):
        stopped.append(f"PostgreSQL ({settings.data_dir / 'pg'})")
    return stopped


def with_addresses(settings: Settings, *, kafka: str | None, database: str) -> Settings:
    return settings.model_copy(
        update={"kafka_bootstrap": kafka, "database_url": SecretStr(database)}
    )


@contextlib.contextmanager
def ensure_infra(
    settings: Settings, *, say: bool = True, need_kafka: bool = True
) -> Iterator[Settings]:
    """Yield settings with both addresses filled in (the broker's only if ``need_kafka``).

    Configured addresses are used as they are. Otherwise a running ``infra up`` is reused,
    and failing that the embedded services are started here and stopped on exit.
    """
    kafka = settings.kafka_bootstrap
    database = settings.database_url.get_secret_value() if settings.database_url else None
    if (kafka or not need_kafka) and database:
        yield settings
        return
    running = read_state(settings)
    if running is not None:
        if say and need_kafka:
            print(
                f"using embedded infra from `outcomeloop infra up`: kafka {running.kafka_bootstrap}"
            )
        yield with_addresses(
            settings,
            kafka=kafka or running.kafka_bootstrap,
            database=database or running.database_url,
        )
        return
    broker: BrokerHandle | None = None
    try:
        if kafka is None and need_kafka:
            broker = start_tansu(settings.data_dir / "tansu.log")
            kafka = broker.bootstrap
            if say:
                print(f"started embedded Tansu broker at {kafka} (log {broker.log_path})")
        if database is None:
            pg = start_postgres(settings.data_dir / "pg")
            database = pg.dsn
            if say:
                print(f"started embedded PostgreSQL: {database}")
        yield with_addresses(settings, kafka=kafka, database=database)
    finally:
        if broker is not None:
            broker.stop()
