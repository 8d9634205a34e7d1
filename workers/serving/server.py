"""`outcomeloop serve`: the serving client behind the Open Inference Protocol v2 REST API.

Every answer is logged as a `PredictionMade` on the predictions topic and its
`prediction_id` returned, so callers send outcomes and feedback by it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Mapping, Sequence
from importlib.metadata import version as package_version
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from workers.serving.client import ServingClient
from workers.serving.oip import InferenceError, model_metadata, parse_request, tensor
from workers.serving.policy import ServingOptions
from workers.settings import Settings

log = logging.getLogger(__name__)
LATENCY = Histogram(
    "ol_serving_request_seconds",
    "OIP infer requests, from receipt to answer (predictions logged)",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CLIENTS = web.AppKey("clients", dict[str, ServingClient])


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _client(request: web.Request) -> ServingClient | web.Response:
    name = request.match_info["model"]
    clients = request.app[CLIENTS]
    client = clients.get(name)
    if client is None:
        known = ", ".join(sorted(clients))
        return _error(404, f"unknown model {name!r} (served: {known})")
    return client


def _ready(client: ServingClient) -> bool:
    return client.champion is not None or client.fallback is not None


def _feature_types(client: ServingClient) -> dict[str, str]:
    if client.champion is not None:
        spec = client.champion.model.spec
        return {
            n: "BYTES" if k == "categorical" else "FP64"
            for n, k in zip(spec.names, spec.kinds, strict=True)
        }
    return {f: "FP64" for f in client.settings.models[client.model].features}


async def live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    waiting = sorted(m for m, c in request.app[CLIENTS].items() if not _ready(c))
    body = {"ready": not waiting, "waiting_for_a_model": waiting}
    return web.json_response(body, status=200 if not waiting else 503)


async def server_metadata(request: web.Request) -> web.Response:
    return web.json_response(
        {"name": "outcomeloop", "version": package_version("outcomeloop"), "extensions": []}
    )


async def metadata(request: web.Request) -> web.Response:
    client = _client(request)
    if isinstance(client, web.Response):
        return client
    versions = [client.champion.version] if client.champion is not None else []
    return web.json_response(
        model_metadata(client.model, client.task, _feature_types(client), versions)
    )


async def model_ready(request: web.Request) -> web.Response:
    client = _client(request)
    if isinstance(client, web.Response):
        return client
    ok = _ready(client)
    return web.json_response({"name": client.model, "ready": ok}, status=200 if ok else 503)


async def infer(request: web.Request) -> web.Response:
    started = time.perf_counter()
    client = _client(request)
    if isinstance(client, web.Response):
        return client
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the request body is not JSON")
    cfg = client.settings.models[client.model]
    try:
        parsed = parse_request(body, features=cfg.features)
    except InferenceError as exc:
        return _error(400, str(exc))
    if not _ready(client):
        return _error(503, f"no model loaded for {client.model} and no fallback")
    answers, ids = [], []
    for row, entity, pid in zip(parsed.rows, parsed.entity_ids, parsed.prediction_ids, strict=True):
        prediction_id = pid or str(uuid.uuid4())
        answer = client.score(row, routing_key=entity or prediction_id)
        answers.append(answer)
        ids.append(prediction_id)
    # Logged before answering: a caller may send an outcome the moment it has the id.
    await asyncio.gather(
        *(
            client.emit(a, row, entity_id=entity, prediction_id=pid)
            for a, row, entity, pid in zip(
                answers, parsed.rows, parsed.entity_ids, ids, strict=True
            )
        )
    )
    versions = [a.version for a in answers]
    response: dict[str, Any] = {
        "model_name": client.model,
        "model_version": versions[0] if len(set(versions)) == 1 else None,
        "outputs": [
            tensor("prediction", "FP64", [a.score for a in answers]),
            tensor("prediction_id", "BYTES", ids),
            tensor("model_version", "BYTES", versions),
            tensor("source", "BYTES", [a.source for a in answers]),
            tensor("uncertain", "BOOL", [a.uncertain for a in answers]),
        ],
    }
    if parsed.id is not None:
        response["id"] = parsed.id
    LATENCY.labels(client.model).observe(time.perf_counter() - started)
    return web.json_response(response)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def build_app(clients: Mapping[str, ServingClient]) -> web.Application:
    app = web.Application(client_max_size=8 << 20)
    app[CLIENTS] = dict(clients)
    app.add_routes(
        [
            web.get("/v2", server_metadata),
            web.get("/v2/health/live", live),
            web.get("/v2/health/ready", ready),
            web.get("/v2/models/{model}", metadata),
            web.get("/v2/models/{model}/ready", model_ready),
            web.post("/v2/models/{model}/infer", infer),
            web.get("/metrics", metrics),
        ]
    )
    return app


async def serve(
    settings: Settings,
    models: Sequence[str],
    *,
    host: str,
    port: int,
    options: ServingOptions,
    fallback_score: float | None,
    stop: asyncio.Event | None = None,
) -> None:
    """Load each model's champion, answer until ``stop`` is set (default: SIGTERM/SIGINT)."""
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    fallback = (lambda _: fallback_score) if fallback_score is not None else None
    clients = {m: ServingClient(settings, m, options=options, fallback=fallback) for m in models}
    for client in clients.values():
        await client.start()
        loaded = client.champion.version if client.champion else "none (fallback answers)"
        log.info("serving %s: champion %s", client.model, loaded)
    runner = web.AppRunner(build_app(clients))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("Open Inference Protocol v2 on http://%s:%d/v2", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        for client in clients.values():
            await client.stop()
