"""Session-wide real infrastructure: one Tansu broker and one PostgreSQL server per run.

Each test gets its own database and its own topic names on them, so tests never see each
other's data and can run in any order.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from workers.db.migrate import migrate
from workers.db.pool import create_pool
from workers.infra.broker import BrokerHandle, start_tansu
from workers.infra.postgres import PostgresHandle, start_postgres
from workers.ingest import sql as ingest_sql
from workers.settings import ModelConfig, Settings, TimeConfig, TopicsConfig, WorkerConfig

REPO = Path(__file__).resolve().parent.parent
# Tests describe the models they need; the demo-tuned defaults must not leak into them
# (pydantic-settings merges the file's tables with what a test passes). Worker
# subprocesses inherit this through their environment.
os.environ["OL_CONFIG_FILE"] = str(REPO / "tests" / "config.toml")

TEST_MODELS = {
    "ctr": ModelConfig(task="regression", horizon_seconds=3600, no_outcome="drop"),
    "purchase": ModelConfig(
        task="binary", horizon_seconds=3600, no_outcome="negative", no_outcome_label=0.0
    ),
}


@dataclass(frozen=True)
class Infra:
    broker: BrokerHandle
    postgres: PostgresHandle


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    root = tmp_path_factory.mktemp("infra")
    broker = start_tansu(root / "tansu.log")
    postgres = start_postgres(root / "pg")
    yield Infra(broker, postgres)
    broker.stop()
    postgres.server.cleanup()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def empty_database(infra: Infra, prefix: str = "t_") -> str:
    """A new database with nothing in it; its DSN."""
    name = unique(prefix)
    admin = await asyncpg.connect(infra.postgres.admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return infra.postgres.admin_dsn.replace("/postgres?", f"/{name}?")


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[str]:
    """A fresh, migrated database for this test; its DSN."""
    dsn = await empty_database(infra)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, REPO / "migrations")
    finally:
        await conn.close()
    yield dsn


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(infra: Infra, database: str, tmp_path: Path) -> SettingsFactory:
    """Settings on the session's infra, with this test's database and topic names."""
    ns = unique("t")

    def factory(**overrides: Any) -> Settings:
        topics = TopicsConfig(
            **{
                f: f"{ns}.{f}"
                for f in TopicsConfig.model_fields
                if f not in ("partitions", "replication_factor")
            },
            partitions=2,
        )
        values: dict[str, Any] = {
            "app_id": ns,
            "kafka_bootstrap": infra.broker.bootstrap,
            "database_url": database,
            "data_dir": tmp_path / "data",
            "topics": topics,
            "worker": WorkerConfig(
                session_timeout_seconds=6.0,
                heartbeat_interval_seconds=1.0,
                batch_within_seconds=0.1,
                sweep_interval_seconds=0.5,
                web_enabled=False,
            ),
            "time": TimeConfig(),
            "models": TEST_MODELS,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


def settings_env(settings: Settings) -> dict[str, str]:
    """The OL_ variables that reproduce ``settings`` in a worker subprocess."""
    dumped = json.loads(settings.model_dump_json())
    env = {
        "OL_APP_ID": settings.app_id,
        "OL_DATA_DIR": str(settings.data_dir),
        "OL_LOG_LEVEL": "INFO",
    }
    if settings.kafka_bootstrap:
        env["OL_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.database_url:
        env["OL_DATABASE_URL"] = settings.database_url.get_secret_value()
    for key in (
        "topics",
        "worker",
        "time",
        "models",
        "limits",
        "health",
        "control",
        "monitoring",
        "notifications",
    ):
        env[f"OL_{key.upper()}"] = json.dumps(dumped[key])
    return env


async def pending_counts_wrong(pool: asyncpg.Pool) -> list[tuple[str, int | None, int | None]]:
    """Models whose kept pending count is not their rows': (model, kept, counted)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(ingest_sql.PENDING_DRIFT)
    return [(r["model"], r["kept"], r["counted"]) for r in rows]


@pytest.fixture
async def pool(make_settings: SettingsFactory) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(make_settings(), max_size=4)
    yield p
    await p.close()
