"""`outcomeloop serve` against the model's own predict, side by side in one run:

    python -m benchmarks.serve_bench [--requests 2000] [--concurrency 8] [--write BENCHMARKS.md]

On the embedded broker and PostgreSQL: a LightGBM champion is registered, the Open
Inference Protocol server starts in this process, and one request (one row) at a time
alternates with one call of the model's `predict` on the same row; then requests are sent
`--concurrency` at a time for throughput. Each answer is logged to `ol.predictions` and
flushed before the response, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from benchmarks.efficacy import write_section
from workers.db.migrate import migrate
from workers.db.pool import create_pool
from workers.infra.embedded import ensure_infra
from workers.registry.service import Registry
from workers.retrain.features import FeatureSpec
from workers.retrain.models import fit_model
from workers.serving.policy import ServingOptions
from workers.serving.server import serve
from workers.settings import ModelConfig, Settings
from workers.topics import ensure_topics

SECTION = "## Scoring over HTTP (python -m benchmarks.serve_bench)"
FEATURES = [f"f{i}" for i in range(8)] + ["channel"]


def rows(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {**{f"f{i}": float(rng.normal()) for i in range(8)}, "channel": "ab"[i % 2]}
        for i in range(n)
    ]


def request(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": k,
                "datatype": "BYTES" if isinstance(v, str) else "FP64",
                "shape": [1],
                "data": [v],
            }
            for k, v in row.items()
        ]
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) * 1000


async def measure(settings: Settings, n: int, concurrency: int) -> dict[str, Any]:
    pool = await create_pool(settings, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn, settings.migrations_dir)
    await ensure_topics(settings)
    train = rows(2000)
    spec = FeatureSpec.infer(FEATURES, train)
    labels = [r["f0"] * 2 + r["f1"] - (r["channel"] == "a") for r in train]
    model = fit_model("lightgbm", "regression", spec, train, labels, params={"n_estimators": 100})
    directory = settings.artifacts_dir / "ctr" / "v1"
    directory.mkdir(parents=True)
    registry = Registry(pool)
    await registry.register(
        model="ctr",
        version="v1",
        status="candidate",
        kind="lightgbm",
        artifact_dir=str(directory),
        files=model.save(directory),
        card={},
    )
    await registry.promote("ctr", "v1", by="bench", reason="benchmark")
    await pool.close()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(
            settings,
            ["ctr"],
            host="127.0.0.1",
            port=port,
            options=ServingOptions(),
            fallback_score=None,
            stop=stop,
        )
    )
    url = f"http://127.0.0.1:{port}/v2/models/ctr/infer"
    probe = rows(n, seed=11)
    http_times: list[float] = []
    predict_times: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"http://127.0.0.1:{port}/v2/health/ready") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
        for row in probe[:50]:  # warm-up: connections, the producer, LightGBM's first call
            async with http.post(url, json=request(row)) as r:
                await r.read()
        for row in probe:  # interleaved, one at a time
            t = time.perf_counter()
            async with http.post(url, json=request(row)) as r:
                assert r.status == 200, await r.text()
                await r.read()
            http_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.predict([row])
            predict_times.append(time.perf_counter() - t)

        async def one(row: dict[str, Any]) -> None:
            async with http.post(url, json=request(row)) as r:
                await r.read()

        queue = list(probe)
        t = time.perf_counter()

        async def lane() -> None:
            while queue:
                await one(queue.pop())

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        concurrent_seconds = time.perf_counter() - t
    stop.set()
    await server
    return {
        "requests": n,
        "concurrency": concurrency,
        "http_p50_ms": pct(http_times, 50),
        "http_p99_ms": pct(http_times, 99),
        "http_mean_ms": float(np.mean(http_times)) * 1000,
        "predict_p50_ms": pct(predict_times, 50),
        "predict_p99_ms": pct(predict_times, 99),
        "sequential_rps": n / sum(http_times),
        "concurrent_rps": n / concurrent_seconds,
    }


def markdown(r: dict[str, Any], argv: Sequence[str], started: datetime) -> str:
    command = "python -m benchmarks.serve_bench " + " ".join(shlex.quote(a) for a in argv)
    ratio = r["http_p50_ms"] / r["predict_p50_ms"]
    return "\n".join(
        [
            SECTION,
            "",
            f"`{command}` on {started:%Y-%m-%d %H:%M} UTC (2 cores; the broker, PostgreSQL, "
            "the server and the client on the same machine). One row per request, each "
            "answer logged to `ol.predictions` and flushed before the response.",
            "",
            "| | p50 | p99 | mean |",
            "|---|---|---|---|",
            f"| `POST /v2/models/ctr/infer`, one at a time | {r['http_p50_ms']:.2f} ms | "
            f"{r['http_p99_ms']:.2f} ms | {r['http_mean_ms']:.2f} ms |",
            f"| the model's own `predict`, same rows, interleaved | {r['predict_p50_ms']:.2f} ms "
            f"| {r['predict_p99_ms']:.2f} ms | - |",
            "",
            f"HTTP over predict at p50: {ratio:.1f}x. Throughput: "
            f"{r['sequential_rps']:,.0f} requests/s one at a time, "
            f"{r['concurrent_rps']:,.0f} requests/s with {r['concurrency']} in flight "
            f"({r['requests']:,} requests each). The seeds' bar was an average under 75 ms.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_bench")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write", type=Path, help="e.g. BENCHMARKS.md")
    args = parser.parse_args(args_list)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        base = Settings(
            data_dir=Path(tmp),
            app_id="servebench",
            models={"ctr": ModelConfig(horizon_seconds=60, features=tuple(FEATURES))},
        )
        with ensure_infra(base, say=False) as settings:
            result = asyncio.run(measure(settings, args.requests, args.concurrency))
    text = markdown(result, args_list, started)
    print(text)
    if args.write is not None:
        write_section(args.write, text, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
