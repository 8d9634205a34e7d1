"""`outcomeloop serve` on the real broker and PostgreSQL: the Open Inference Protocol v2
endpoints answer with the champion, log every prediction with the id they return, and
refuse bad requests with a reason."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import pytest

from tests.integration.test_serving import PROBES, read_predictions, settings, two_ctr_versions
from workers.serving.policy import ServingOptions
from workers.serving.server import serve
from workers.settings import Settings

pytestmark = pytest.mark.integration
__all__ = ["settings"]  # the fixture, reused


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "req-1",
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [len(rows)], "data": [r["x"] for r in rows]},
            {
                "name": "channel",
                "datatype": "BYTES",
                "shape": [len(rows)],
                "data": [r["channel"] for r in rows],
            },
            {
                "name": "entity_id",
                "datatype": "BYTES",
                "shape": [len(rows)],
                "data": [f"u{i}" for i in range(len(rows))],
            },
        ],
    }


async def test_infer_answers_with_the_champion_and_logs_each_prediction(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    reg = await two_ctr_versions(pool, tmp_path)
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
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
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{url}/v2/health/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert not task.done(), task
                await asyncio.sleep(0.05)
            async with http.get(f"{url}/v2/models/ctr") as r:
                meta = await r.json()
            assert r.status == 200 and meta["versions"] == ["v1"]
            assert {i["name"]: i["datatype"] for i in meta["inputs"]}["channel"] == "BYTES"

            rows = [dict(p) for p in PROBES[:6]]
            async with http.post(f"{url}/v2/models/ctr/infer", json=columns(rows)) as r:
                body = await r.json()
            assert r.status == 200, body
            out = {o["name"]: o["data"] for o in body["outputs"]}
            assert body["id"] == "req-1" and body["model_version"] == "v1"
            assert np.allclose(out["prediction"], reg.models["v1"].predict(rows))
            assert out["model_version"] == ["v1"] * 6 and out["source"] == ["model"] * 6
            ids = out["prediction_id"]
            assert len(set(ids)) == 6

            # Every answer is on the predictions topic, by the id the caller got.
            logged = {p.prediction_id: p for p in await read_predictions(settings, 6)}
            assert set(logged) == set(ids)
            first = logged[ids[0]]
            assert first.model_version == "v1" and first.entity_id == "u0"
            assert first.features == rows[0] and first.prediction == pytest.approx(
                out["prediction"][0]
            )

            bad = columns(rows)
            bad["inputs"][0]["shape"] = [7]
            async with http.post(f"{url}/v2/models/ctr/infer", json=bad) as r:
                assert r.status == 400 and "shape" in (await r.json())["error"]
            async with http.post(f"{url}/v2/models/nope/infer", json=columns(rows)) as r:
                assert r.status == 404 and "ctr" in (await r.json())["error"]
            async with http.get(f"{url}/metrics") as r:
                text = await r.text()
            assert 'ol_serving_request_seconds_count{model="ctr"}' in text
            assert 'ol_serving_answers_total{model="ctr",source="model"}' in text
    finally:
        stop.set()
        await task
