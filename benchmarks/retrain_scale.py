"""A gated retrain on a large training set, through the real RetrainService and its
training process, on an embedded PostgreSQL:

    python -m benchmarks.retrain_scale [--rows 1000000] [--features 20] [--write BENCHMARKS.md]

Reports the run's stages (from `retrain_runs.durations`), the longest stall of the
worker's event loop while the run goes on (a 10 ms ticker beside it), and the peak memory
of the worker process and of the training process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.efficacy import write_section
from schemas import Message
from workers.db.migrate import migrate
from workers.db.pool import create_pool
from workers.infra.postgres import start_postgres
from workers.ingest.sql import DeadLetterRow
from workers.runtime import Services
from workers.settings import GatesConfig, ModelConfig, RetrainConfig, Settings

SECTION = "## Retraining at scale (python -m benchmarks.retrain_scale)"
MODEL = "big"


class _QuietPublisher:
    """Keeps nothing: only the run is measured."""

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        return None


class _QuietSink:
    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        return [None] * len(rows)


def fill_sql(rows: int, features: int) -> str:
    """Predictions and their labeled examples made by PostgreSQL itself: a label that is a
    noisy sum of the first five features, one row a second of prediction time."""
    feats = ", ".join(f"'f{i}', round((random() * 10)::numeric, 3)" for i in range(features))
    return f"""
INSERT INTO predictions (prediction_id, event_id, model, model_version, features, prediction,
                         predicted_at, horizon_ends_at)
SELECT 'p' || g, gen_random_uuid(), '{MODEL}', 'v0', jsonb_build_object({feats}), 0.0,
       now() - interval '1 second' * ({rows} - g), now()
FROM generate_series(1, {rows}) AS g;
INSERT INTO labeled_examples (prediction_id, model, model_version, features, prediction,
                              label, label_source, predicted_at, labeled_at, matured_at)
SELECT prediction_id, model, model_version, features, prediction,
       (features->>'f0')::float8 + (features->>'f1')::float8 * 2
         - (features->>'f2')::float8 + random(),
       'outcome', predicted_at, predicted_at + interval '1 second', now()
FROM predictions WHERE model = '{MODEL}';
ANALYZE predictions; ANALYZE labeled_examples;
"""


async def _ticker(stalls: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        stalls.append(loop.time() - t - 0.01)


async def measure(rows: int, features: int, workdir: Path) -> dict[str, Any]:
    pg = start_postgres(workdir / "pg")
    name = f"scale_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = pg.dsn.replace("/outcomeloop?", f"/{name}?")
    cfg = ModelConfig(
        horizon_seconds=60,
        retrain=RetrainConfig(
            max_rows=rows,
            lookback_seconds=float(rows + 10),
            candidates=("lightgbm",),
            gates=GatesConfig(min_improvement=0.0),
        ),
    )
    settings = Settings(
        database_url=dsn,
        kafka_bootstrap="127.0.0.1:9",
        data_dir=workdir / "data",
        models={MODEL: cfg},
    )
    pool = await create_pool(settings, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn, settings.migrations_dir)
        t = time.perf_counter()
        await conn.execute(fill_sql(rows, features))
        filled = time.perf_counter() - t
    services = Services(settings, pool, _QuietSink(), _QuietPublisher())
    stalls: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stalls, stop))
    t = time.perf_counter()
    run_id = await services.retrain.run(MODEL, "command", {})
    total = time.perf_counter() - t
    stop.set()
    await ticker
    async with pool.acquire() as conn:
        run = await conn.fetchrow(
            "SELECT status, durations, dataset->'rows' AS n, error FROM retrain_runs WHERE id = $1",
            run_id,
        )
    services.executor.shutdown(wait=True)
    await pool.close()
    assert run is not None
    return {
        "rows": rows,
        "features": features,
        "fill_seconds": filled,
        "status": run["status"],
        "error": run["error"],
        "dataset_rows": run["n"],
        "durations": dict(run["durations"]),
        "total_seconds": total,
        "max_stall_ms": max(stalls, default=0.0) * 1000,
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "training_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def markdown(r: dict[str, Any], argv: Sequence[str], started: datetime) -> str:
    stages = " · ".join(f"{k} {v:.1f} s" for k, v in r["durations"].items())
    command = "python -m benchmarks.retrain_scale " + " ".join(shlex.quote(a) for a in argv)
    return "\n".join(
        [
            SECTION,
            "",
            f"`{command}` on {started:%Y-%m-%d %H:%M} UTC (2 cores, PostgreSQL on the same "
            "machine). One gated LightGBM run on "
            f"{r['rows']:,} labeled examples x {r['features']} numeric features, through "
            "`RetrainService.run` and its training process (dataset, gates, training and "
            "evaluation all happen there).",
            "",
            "| run | status | rows | trigger to registered version | longest event-loop stall "
            "| worker peak RSS | training process peak RSS |",
            "|---|---|---|---|---|---|---|",
            f"| 1 | {r['status']} | {r['dataset_rows']:,} | {r['total_seconds']:.1f} s | "
            f"{r['max_stall_ms']:.0f} ms | {r['worker_peak_mb']:.0f} MB | "
            f"{r['training_peak_mb']:.0f} MB |",
            "",
            f"Stages: {stages}. (Filling the tables took {r['fill_seconds']:.0f} s and is "
            "not part of the run.)" + (f" Error: {r['error']}" if r["error"] else ""),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrain_scale")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--write", type=Path, help="e.g. BENCHMARKS.md")
    args = parser.parse_args(args_list)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="retrain-scale-") as tmp:
        result = asyncio.run(measure(args.rows, args.features, Path(tmp)))
    text = markdown(result, args_list, started)
    print(text)
    if args.write is not None:
        write_section(args.write, text, SECTION)
    return 0 if result["status"] in ("succeeded", "gated") else 1


if __name__ == "__main__":
    raise SystemExit(main())
