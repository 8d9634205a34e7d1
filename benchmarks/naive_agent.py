"""The baseline `make bench` compares the worker with: a naive per-event Faust agent.

    NAIVE_AGENT_DSN=postgresql://... python -m benchmarks.naive_agent --bootstrap HOST:PORT \
        --app-id ID TOPIC...

What a first version of a Kafka-to-PostgreSQL service often looks like: one Faust agent
over the topics, each event parsed with ``json.loads`` and written with one INSERT (its
own transaction, as asyncpg runs a statement outside a transaction block) into a simple
table. No validation, no join, no maturation: it does far less than the worker per event,
and only its rate per event is compared. The table has no key on the event, so an event
delivered twice is stored twice and the benchmark counts it as doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import faust
from faust.worker import Worker

from benchmarks import bench_sql

NAIVE_DSN_ENV = "NAIVE_AGENT_DSN"  # its database, from the environment (a DSN may hold a secret)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.naive_agent", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    parser.add_argument("--app-id", required=True, help="the Faust app id (its consumer group)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=Path(".outcomeloop/naive"))
    parser.add_argument("--session-timeout", type=float, default=8.0, help="seconds")
    parser.add_argument("topics", nargs="+")
    return parser


def create_app(args: argparse.Namespace) -> faust.App:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        args.app_id,
        broker=[f"kafka://{host}" for host in args.bootstrap.split(",")],
        store="memory://",
        datadir=str(args.data_dir),
        topic_partitions=args.partitions,
        broker_session_timeout=args.session_timeout,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(
        *args.topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=args.partitions,
    )

    @app.agent(topic)
    async def store(stream: faust.StreamT[Any]) -> None:
        conn = await asyncpg.connect(os.environ[NAIVE_DSN_ENV])
        await conn.execute(bench_sql.NAIVE_TABLE)
        try:
            async for event in stream.events():
                body = json.loads(event.value)
                await conn.execute(
                    bench_sql.NAIVE_INSERT,
                    UUID(body["event_id"]),
                    event.message.topic,
                    body.get("prediction_id"),
                    event.value.decode(),
                )
        finally:
            await conn.close()

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not os.environ.get(NAIVE_DSN_ENV):
        parser.error(f"set {NAIVE_DSN_ENV} to the DSN of its database")
    logging.basicConfig(level=logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(create_app(args), loglevel="warning", loop=loop, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
