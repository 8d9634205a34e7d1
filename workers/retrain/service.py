"""A retrain run, start to finish: dataset, data gates, training in a process pool,
evaluation against the champion, model gates, registry, promotion or a wait for approval.

Every stage is timed and the run's row in `retrain_runs` holds the dataset summary, the
gate report and the durations, whether it ends in a promotion, a gate or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from schemas import (
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    RetrainExhausted,
    RetrainStateChanged,
)
from schemas.base import utc_now
from workers import metrics
from workers.db.pool import dsn_of
from workers.errors import RegistryError
from workers.failures import FailureLog
from workers.monitor import sql as monitor_sql
from workers.publish import EventPublisher
from workers.registry.service import SYSTEM, Registry
from workers.retrain import controller, sql
from workers.retrain.controller import Facts, Loop
from workers.retrain.dataset import (
    LeakageError,
)
from workers.retrain.gates import (
    GateResult,
    first_failure,
)
from workers.retrain.pipeline import RunJob, run_job, warm
from workers.retrain.recall import Former, RecallJob, recall_job
from workers.retrain.triggers import ControlState, Decision, TriggerKind, decide
from workers.settings import ModelConfig, Settings

log = logging.getLogger(__name__)
R = TypeVar("R")


class RetrainService:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        registry: Registry,
        executor: Executor,
        clock: Callable[[], datetime] = utc_now,
        executor_factory: Callable[[], Executor] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.registry = registry
        self.executor = executor
        self._executor_factory = executor_factory
        self.clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        # One loop transition at a time per model (the timer, alerts and finishing runs all
        # move it), and the run each loop started, still going in this process.
        self._loop_locks: dict[str, asyncio.Lock] = {}
        self._loop_runs: dict[str, asyncio.Task[Any]] = {}
        # The degradation (version, change) each model last tried a recall for, and on
        # how many of the champion's post-change rows.
        self._recalled: dict[str, tuple[str | None, datetime | None, int]] = {}
        self._step_failures: dict[str, FailureLog] = {}
        # Whether a version still shows a quality or error episode (the monitor answers;
        # without one, a degradation counts as lasting until a promotion).
        self.degraded: Callable[[str, str], bool] = lambda model, version: True
        # Told when a version becomes the champion (the monitor restarts its windows).
        self.serving: Callable[[str, str], None] = lambda model, version: None

    # -- triggering ---------------------------------------------------------------

    async def decision(self, model: str, kind: TriggerKind) -> Decision:
        cfg = self.settings.models[model]
        async with self.pool.acquire() as conn:
            ctl = await sql.control(conn, model)
            running = await sql.is_running(conn, model)
        state = ControlState(bool(ctl["paused"]), ctl["last_auto_retrain_at"], running)
        return decide(kind, cfg.retrain, state, self.clock())

    async def trigger(
        self, model: str, kind: TriggerKind, detail: dict[str, Any], *, by: str = SYSTEM
    ) -> asyncio.Task[int | None] | None:
        """Start a run in the background if the trigger may fire now; None if not."""
        if model not in self.settings.models:
            return None
        verdict = await self.decision(model, kind)
        if not verdict.go:
            log.info("%s: %s trigger not acted on: %s", model, kind, verdict.reason)
            return None
        if kind != "command":
            async with self.pool.acquire() as conn:
                # The global newest seq (one index probe): seqs only grow, so "matured
                # since" needs no per-model maximum.
                seq = await monitor_sql.max_seq(conn)
                await sql.mark_auto_retrain(conn, model, self.clock(), seq)
        log.info("%s: retrain triggered by %s %s", model, kind, detail)
        task = asyncio.create_task(self.run(model, kind, detail, by=by))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _in_training_process(self, fn: Callable[[Any], R], job: Any) -> R:
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, job)
        except BrokenProcessPool:
            # The training process died (out of memory, killed): later runs get a new pool.
            if self._executor_factory is not None:
                self.executor = self._executor_factory()
            raise

    async def warm_up(self) -> None:
        """Start the training process ahead of the first run (it imports the learners),
        so a run after a change starts at once rather than seconds later."""
        if any(cfg.retrain.enabled for cfg in self.settings.models.values()):
            await asyncio.get_running_loop().run_in_executor(self.executor, warm)

    async def idle(self) -> None:
        """Wait for background runs (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the retrain controller ---------------------------------------------------------

    async def _loop(self, model: str) -> tuple[Loop, asyncpg.Record]:
        async with self.pool.acquire() as conn:
            row = await sql.control(conn, model)
        loop = Loop(
            state=row["loop_state"],
            version=row["loop_version"],
            trigger=row["loop_trigger"],
            detail=row["loop_detail"],
            change_at=row["change_at"],
            attempts=row["attempts"],
            last_attempt_rows=row["last_attempt_rows"],
            next_attempt_at=row["next_attempt_at"],
            reason=row["loop_reason"],
            refresh_rows=row["refresh_rows"],
        )
        return loop, row

    async def _save(self, model: str, old: Loop, new: Loop, post_change_rows: int = 0) -> None:
        if new == old:
            return
        async with self.pool.acquire() as conn:
            await sql.save_loop(conn, model, new)
        if new.state == old.state:
            return  # a new reason or count: in status and the table, not on the topic
        log.info("%s: retrain loop %s -> %s: %s", model, old.state, new.state, new.reason)
        cfg = self.settings.models[model].retrain
        await self.publisher.publish(
            self.settings.topics.models,
            RetrainStateChanged(
                model=model,
                state=new.state,
                previous=old.state,
                version=new.version or old.version,
                change_at=new.change_at,
                attempts=new.attempts,
                post_change_rows=post_change_rows,
                needed_rows=controller.needed_rows(new, cfg),
                reason=new.reason[:500],
            ),
            key=model,
        )

    async def _change_at(
        self, model: str, version: str | None, window: str | None
    ) -> datetime | None:
        """Where the change began, in prediction time: the most likely shift in the
        version's recent losses, not before the alerting window's first example."""
        if version is None:
            return None
        cfg = self.settings.models[model]
        span = 4 * max((*cfg.monitor.count_windows, cfg.retrain.min_post_change, 500))
        async with self.pool.acquire() as conn:
            examples = await sql.recent_examples(conn, model, version, min(span, 20_000))
        if not examples:
            return None
        losses = controller.example_losses(
            cfg.task, [e[1] for e in examples], [e[2] for e in examples]
        )
        size = next((n for n in cfg.monitor.count_windows if window == f"last_{n}"), None)
        cut = controller.change_start(losses, None if size is None else len(examples) - size)
        return examples[cut][0]

    async def note_degradation(
        self, model: str, kind: TriggerKind, detail: dict[str, Any], version: str | None
    ) -> None:
        """A quality alert or drift episode: open the model's loop (once per degradation)
        and let it wait for post-change evidence before it trains."""
        cfg = self.settings.models.get(model)
        if cfg is None:
            return
        switch = {"quality_alert": cfg.retrain.triggers.on_quality_alert}.get(
            kind, cfg.retrain.triggers.on_drift
        )
        if not cfg.retrain.enabled or not switch:
            log.info("%s: %s not acted on: that trigger is off for this model", model, kind)
            return
        async with self._lock(model):
            # Checked under the lock: a refresh may promote a new champion meanwhile.
            champion = await self.registry.champion(model)
            if champion is not None and version is not None and champion["version"] != version:
                log.info(
                    "%s: %s on %s ignored: %s is the champion",
                    model,
                    kind,
                    version,
                    champion["version"],
                )
                return
            await self._open_degradation(model, kind, detail, version)

    def _lock(self, model: str) -> asyncio.Lock:
        return self._loop_locks.setdefault(model, asyncio.Lock())

    async def _open_degradation(
        self, model: str, kind: TriggerKind, detail: dict[str, Any], version: str | None
    ) -> None:
        loop, _ = await self._loop(model)
        if loop.handles(version):
            return
        change_at = await self._change_at(model, version, detail.get("window"))
        opened = controller.open_degradation(
            loop, trigger=kind, detail=detail, version=version, change_at=change_at
        )
        if opened is None:
            return
        log.warning(
            "%s: %s on %s; the change began at %s (prediction time)",
            model,
            kind,
            version,
            change_at.isoformat() if change_at else "an unknown time",
        )
        await self._save(model, loop, opened)
        await self._step(model)

    async def step(self, model: str) -> Loop:
        """Advance the model's loop: wait, or start the run it has been waiting for."""
        async with self._lock(model):
            return await self._step(model)

    async def _step(self, model: str) -> Loop:
        cfg = self.settings.models[model]
        loop, row = await self._loop(model)
        if not loop.open and loop.refresh_rows is None:
            return loop
        run = self._loop_runs.get(model)
        if run is not None and not run.done():
            return loop  # its run is going on here; it moves the loop when it ends
        if loop.state == "training" and not await self._running(model):
            # The run it started is gone without a verdict (its worker died).
            step = controller.failed_attempt(
                loop,
                rows=loop.last_attempt_rows,
                now=self.clock(),
                cfg=cfg.retrain,
                reason="the run ended without a verdict",
            )
            await self._settle_loop(model, loop, step)
            return step.loop
        rows = 0
        if loop.change_at is not None:
            need = loop.refresh_rows if not loop.open else None
            need = need or controller.needed_rows(loop, cfg.retrain)
            async with self.pool.acquire() as conn:
                rows = await sql.post_change_rows(
                    conn, model, loop.change_at, max(need, cfg.retrain.recall.min_rows)
                )
        last_run = row["last_auto_retrain_at"]
        if last_run is not None and row["rearmed_at"] is not None and row["rearmed_at"] >= last_run:
            last_run = None  # a promotion since: its cooldown is over
        facts = Facts(
            now=self.clock(),
            paused=bool(row["paused"]),
            last_auto_retrain_at=last_run,
            running=await self._running(model),
            degraded=loop.version is None or self.degraded(model, loop.version),
            post_change_rows=rows,
        )
        if controller.recall_due(loop, facts, cfg.retrain):
            # Before any training: an earlier champion may know this. It is judged on the
            # rows the champion itself served since the change, and judged again on twice
            # as many while the loop still waits (a few hundred binary labels are noisy).
            assert loop.version is not None and loop.change_at is not None
            need = controller.next_recall_rows(loop, self._recalled.get(model), cfg.retrain)
            async with self.pool.acquire() as conn:
                served = await sql.served_since(conn, model, loop.version, loop.change_at, need)
                formers = (
                    await sql.former_champions(conn, model, cfg.retrain.recall.versions)
                    if served >= need
                    else []
                )
            if served >= need:
                self._recalled[model] = (loop.version, loop.change_at, need)
            if formers:
                task = asyncio.create_task(self._recall(model, loop, formers))
                self._loop_runs[model] = task
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return loop
        step = controller.advance(loop, facts, cfg.retrain)
        await self._settle_loop(model, loop, step, rows)
        return step.loop

    async def _recall(self, model: str, loop: Loop, formers: list[asyncpg.Record]) -> str | None:
        """Try the model's earlier champions on the post-change rows; serve the best again
        when it is clearly better. Returns the recalled version, or None."""
        cfg = self.settings.models[model]
        assert loop.version is not None and loop.change_at is not None
        async with self.pool.acquire() as lease:
            if not await sql.try_run_lock(lease, model):
                self._recalled.pop(model, None)  # another run holds the model: later
                return None
            try:
                return await self._leased_recall(model, cfg, loop.version, loop.change_at, formers)
            except Exception:
                log.exception("%s: recall of an earlier version failed; training goes on", model)
                return None
            finally:
                await sql.run_unlock(lease, model)

    async def _leased_recall(
        self,
        model: str,
        cfg: ModelConfig,
        champion: str,
        change_at: datetime,
        formers: list[asyncpg.Record],
    ) -> str | None:
        async with self.pool.acquire() as conn:
            run_id = await sql.start_run(
                conn, model, "recall", {"version": champion, "change_at": change_at.isoformat()}
            )
        if run_id is None:
            return None
        job = RecallJob(
            dsn=dsn_of(self.settings),
            model=model,
            cfg=cfg,
            champion=champion,
            change_at=change_at,
            formers=tuple(Former(f["version"], f["artifact_dir"], f["files"]) for f in formers),
            seed=run_id,
        )
        try:
            result = await self._in_training_process(recall_job, job)
        except Exception as exc:
            await self._finish(run_id, "failed", None, {}, [], {}, repr(exc))
            raise
        recalled = result.recalled
        gate = result.gate.reason if result.gate is not None else "no earlier version scored"
        reason = f"recalled by run {run_id}: better on {result.rows} post-change rows ({gate})"
        promoted: ModelPromoted | None = None
        if recalled is not None:
            try:
                promoted = await self.registry.promote(
                    model, recalled, by=SYSTEM, reason=reason, rollback=True, replacing=champion
                )
            except RegistryError as exc:
                log.info("%s: recall of %s not done: %s", model, recalled, exc)
        report = [result.gate] if result.gate is not None else []
        await self._finish(
            run_id,
            "succeeded" if promoted is not None else "gated",
            recalled or result.best,
            {"recall": result.describe(), "rows": result.rows},
            report,
            {"recall": result.seconds},
            None,
        )
        if promoted is None:
            log.info("%s: recall run %d: nothing served again: %s", model, run_id, gate)
            return None
        await self.publisher.publish(self.settings.topics.models, promoted, key=model)
        log.warning("%s: %s serves again (was %s): %s", model, recalled, champion, reason)
        await self.rearm(model, reason)
        return recalled

    async def _settle_loop(
        self, model: str, old: Loop, step: controller.Step, rows: int = 0
    ) -> None:
        await self._save(model, old, step.loop, rows)
        if step.exhausted:
            log.error("%s: retrain exhausted: %s", model, step.loop.reason)
            metrics.RETRAIN_EXHAUSTED.labels(model).inc()
            await self.publisher.publish(
                self.settings.topics.drift,
                RetrainExhausted(
                    model=model,
                    version=step.loop.version,
                    attempts=step.loop.attempts,
                    change_at=step.loop.change_at,
                    last_reason=step.loop.reason[:500],
                ),
                key=model,
            )
        if step.start_run:
            async with self.pool.acquire() as conn:
                seq = await monitor_sql.max_seq(conn)
                # A refresh is no degradation: it does not start the cooldown that spaces
                # them (an alert during it would otherwise wait out the cooldown).
                at = None if step.loop.trigger == "refresh" else self.clock()
                await sql.mark_auto_retrain(conn, model, at, seq)
            detail = {
                **(step.loop.detail or {}),
                "attempt": step.loop.attempts + 1,
                "change_at": step.loop.change_at.isoformat() if step.loop.change_at else None,
            }
            task = asyncio.create_task(
                self.run(model, step.loop.trigger or "quality_alert", detail, from_loop=True)
            )
            self._loop_runs[model] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def step_all(self) -> None:
        for model in self.settings.models:
            failures = self._step_failures.setdefault(
                model, FailureLog(f"{model}: retrain loop step", log)
            )
            try:
                await self.step(model)
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.ok()

    async def _running(self, model: str) -> bool:
        async with self.pool.acquire() as conn:
            return await sql.is_running(conn, model)

    async def rearm(self, model: str, reason: str) -> None:
        """A new champion (promotion or rollback): the loop closes, its cooldown ends, and
        every alert and detector starts again for the version now serving."""
        async with self._lock(model):
            await self._rearm(model, reason)

    async def _rearm(self, model: str, reason: str) -> None:
        loop, _ = await self._loop(model)
        await self._save(model, loop, Loop(reason=reason))
        async with self.pool.acquire() as conn:
            await sql.mark_rearmed(conn, model, self.clock())
        champion = await self.registry.champion(model)
        if champion is not None:
            self.serving(model, champion["version"])

    async def candidate_refused(self, model: str, reason: str) -> None:
        """The candidate a loop waited on was rejected or expired: a failed attempt."""
        cfg = self.settings.models.get(model)
        if cfg is None:
            return
        async with self._lock(model):
            loop, _ = await self._loop(model)
            if loop.state != "awaiting_approval":
                return
            step = controller.failed_attempt(
                loop, rows=loop.last_attempt_rows, now=self.clock(), cfg=cfg.retrain, reason=reason
            )
            await self._settle_loop(model, loop, step)

    # -- the run --------------------------------------------------------------------

    async def run(
        self,
        model: str,
        trigger: str,
        detail: dict[str, Any],
        *,
        by: str = SYSTEM,
        from_loop: bool = False,
    ) -> int | None:
        # The run's lease: a session lock held for its whole life on a connection of its own.
        async with self.pool.acquire() as lease:
            if not await sql.try_run_lock(lease, model):
                log.info("%s: a retrain is already running; %s trigger skipped", model, trigger)
                return None
            try:
                return await self._leased_run(model, trigger, detail, by, from_loop)
            finally:
                await sql.run_unlock(lease, model)

    async def _leased_run(
        self, model: str, trigger: str, detail: dict[str, Any], by: str, from_loop: bool
    ) -> int | None:
        cfg = self.settings.models[model]
        loop, _ = await self._loop(model)
        change_at = loop.change_at if loop.open else None
        async with self.pool.acquire() as conn:
            await sql.abandon_dead_runs(conn)  # ours is free now: an old 'running' row is dead
            run_id = await sql.start_run(conn, model, trigger, {**detail, "by": by})
        if run_id is None:
            log.info("%s: a retrain is already running; %s trigger skipped", model, trigger)
            return None
        timings: dict[str, float] = {}
        report: list[GateResult] = []
        dataset_info: dict[str, Any] = {}
        version = f"r{run_id}"
        status, why, promoted = "failed", "", False
        try:
            status, version_or_none = await self._run(
                model, cfg, run_id, version, trigger, by, timings, report, dataset_info, change_at
            )
            await self._finish(run_id, status, version_or_none, dataset_info, report, timings, None)
            failed = first_failure(report)
            why = f"run {run_id} gate {failed.name}: {failed.reason}" if failed else f"run {run_id}"
            promoted = status == "succeeded" and cfg.retrain.promotion == "auto"
        except LeakageError as exc:
            why = f"run {run_id} leakage: {exc}"
            await self._finish(run_id, "failed", None, dataset_info, report, timings, str(exc))
            await self.publisher.publish(
                self.settings.topics.models,
                ModelRejected(
                    model=model, run_id=run_id, by=SYSTEM, status="gated", reason=f"leakage: {exc}"
                ),
                key=model,
            )
        except Exception as exc:
            log.exception("%s: retrain run %d failed", model, run_id)
            why = f"run {run_id} failed: {exc!r}"[:300]
            await self._finish(run_id, "failed", None, dataset_info, report, timings, repr(exc))
        metrics.RETRAIN_RUNS.labels(model, status).inc()
        if from_loop or promoted:
            await self._after_run(model, status, promoted, int(dataset_info.get("rows", 0)), why)
        log.info(
            "%s: retrain run %d timings %s",
            model,
            run_id,
            {k: round(v, 3) for k, v in timings.items()},
        )
        return run_id

    async def _after_run(
        self, model: str, status: str, promoted: bool, rows: int, reason: str
    ) -> None:
        cfg = self.settings.models[model]
        async with self._lock(model):
            loop, _ = await self._loop(model)
            if promoted:
                await self._rearm(model, f"promoted by {reason}")
                if loop.state == "training":  # a run of the loop's: refresh when data grows
                    champion = await self.registry.champion(model)
                    after = controller.promoted(
                        loop,
                        rows=rows,
                        cfg=cfg.retrain,
                        reason=f"promoted by {reason}",
                        champion=champion["version"] if champion else None,
                    )
                    await self._save(model, Loop(reason=f"promoted by {reason}"), after)
                return
            if loop.state != "training":
                return
            step = controller.after_run(
                loop,
                status=status,
                promoted=False,
                rows=rows,
                now=self.clock(),
                cfg=cfg.retrain,
                reason=reason,
            )
            await self._settle_loop(model, loop, step)

    async def _finish(
        self,
        run_id: int,
        status: str,
        version: str | None,
        dataset: dict[str, Any],
        report: list[GateResult],
        timings: dict[str, float],
        error: str | None,
    ) -> None:
        async with self.pool.acquire() as conn:
            await sql.finish_run(
                conn,
                run_id,
                status=status,
                candidate_version=version,
                dataset=dataset,
                gate_report=[g.to_dict() for g in report],
                durations={k: round(v, 4) for k, v in timings.items()},
                error=error,
            )

    async def _run(
        self,
        model: str,
        cfg: ModelConfig,
        run_id: int,
        version: str,
        trigger: str,
        by: str,
        timings: dict[str, float],
        report: list[GateResult],
        dataset_info: dict[str, Any],
        change_at: datetime | None,
    ) -> tuple[str, str | None]:
        now = self.clock()
        async with self.pool.acquire() as conn:
            serving = await sql.serving_version(conn, model)
        if await self.registry.champion(model) is None and serving is not None:
            await self.registry.adopt_external(model, serving)
        champion = await self.registry.champion(model)

        final_dir = (self.settings.artifacts_dir / model / version).resolve()
        work_dir = final_dir.with_name(f".{version}.partial")
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        job = RunJob(
            dsn=dsn_of(self.settings),
            model=model,
            cfg=cfg,
            run_id=run_id,
            change_at=change_at,
            work_dir=str(work_dir),
            champion_dir=champion["artifact_dir"] if champion is not None else None,
            champion_files=champion["files"] if champion is not None else None,
            has_champion=champion is not None,
        )
        t = time.perf_counter()
        try:
            # Dataset, gates, training and evaluation all happen in the training process.
            result = await self._in_training_process(run_job, job)
        finally:
            timings["in_training_process"] = time.perf_counter() - t
        dataset_info.update(result.dataset_info)
        report += result.report
        timings.update(result.timings)
        outcome = result.outcome
        if outcome is None:
            shutil.rmtree(work_dir, ignore_errors=True)
            failed = first_failure(report)
            assert failed is not None, "a run without a model stops at a data gate"
            await self._gated(model, run_id, None, failed)
            return "gated", None
        shutil.rmtree(final_dir, ignore_errors=True)
        work_dir.rename(final_dir)  # the version's folder appears whole or not at all
        async with contextlib.AsyncExitStack() as stack:
            if trigger == "refresh":
                # The last gate and the promotion under the loop's lock: an alert on the
                # champion lands either before the gate (which then stops the refresh) or
                # after the promotion (about a version no longer serving, so ignored).
                await stack.enter_async_context(self._lock(model))
                report.append(await self._champion_steady(model))

            metrics = result.metrics
            card = {
                "model": model,
                "version": version,
                "kind": outcome.best_kind,
                "task": cfg.task,
                "features": outcome.spec,
                "training_window": result.split,
                "samples": result.samples,
                "candidates": outcome.validation_metrics,
                "metrics": metrics,
                "gate_report": [g.to_dict() for g in report],
                "parent_version": champion["version"] if champion is not None else None,
                "trigger": {"kind": trigger, "by": by, "run_id": run_id},
                "created_at": now.isoformat(),
            }
            failed = first_failure(report)
            status = "rejected" if failed is not None else "candidate"
            await self.registry.register(
                model=model,
                version=version,
                status=status,
                kind=outcome.best_kind,
                artifact_dir=str(final_dir),
                files=outcome.files,
                card=card,
                parent_version=card["parent_version"],
                run_id=run_id,
            )
            if failed is not None:
                await self._gated(model, run_id, version, failed)
                return "gated", version
            await self.publisher.publish(
                self.settings.topics.models,
                ModelRegistered(
                    model=model, version=version, status="candidate", run_id=run_id, metrics=metrics
                ),
                key=model,
            )
            if cfg.retrain.promotion == "auto":
                promoted = await self.registry.promote(
                    model, version, by=SYSTEM, reason=f"every gate passed (run {run_id}, {trigger})"
                )
                await self.publisher.publish(self.settings.topics.models, promoted, key=model)
                was = promoted.previous_version
                log.info("%s: %s promoted to champion (was %s)", model, version, was)
            else:
                log.info("%s: %s passed its gates and waits for ApproveVersion", model, version)
            return "succeeded", version

    async def _champion_steady(self, model: str) -> GateResult:
        loop, _ = await self._loop(model)
        degraded = loop.version is not None and self.degraded(model, loop.version)
        return controller.champion_steady(loop, monitor_degraded=degraded)

    async def _gated(
        self, model: str, run_id: int, version: str | None, failed: GateResult
    ) -> None:
        log.warning("%s: run %d stopped at gate %s: %s", model, run_id, failed.name, failed.reason)
        await self.publisher.publish(
            self.settings.topics.models,
            ModelRejected(
                model=model,
                version=version,
                run_id=run_id,
                by=SYSTEM,
                status="gated",
                reason=f"gate {failed.name}: {failed.reason}",
            ),
            key=model,
        )

    # -- housekeeping ---------------------------------------------------------------

    async def housekeeping(self) -> list[Any]:
        """Expire approvals that waited too long; mark runs of dead workers failed."""
        now = self.clock()
        events: list[Any] = []
        async with self.pool.acquire() as conn:
            await sql.abandon_dead_runs(conn)
            for model, at in (await sql.last_successful_runs(conn)).items():
                metrics.LAST_RETRAIN.labels(model).set(at.timestamp())
        for model, cfg in self.settings.models.items():
            timeout = timedelta(seconds=cfg.retrain.approval_timeout_seconds)
            for event in await self.registry.expire_stale(model, timeout, now):
                await self.publisher.publish(self.settings.topics.models, event, key=model)
                await self.candidate_refused(model, f"{event.version} expired unapproved")
                events.append(event)
        return events

    async def scheduled(self) -> list[str]:
        """Schedule and outcome-count triggers; returns the models it started runs for."""
        started: list[str] = []
        now = self.clock()
        for model, cfg in self.settings.models.items():
            t = cfg.retrain.triggers
            async with self.pool.acquire() as conn:
                ctl = await sql.control(conn, model)
                new_outcomes = (
                    await sql.new_outcomes(
                        conn, model, ctl["outcomes_seen_at_retrain"], t.outcome_count
                    )
                    if t.outcome_count > 0
                    else 0
                )
            if t.schedule_seconds > 0:
                anchor = ctl["last_auto_retrain_at"] or ctl["updated_at"]
                if (now - anchor).total_seconds() >= t.schedule_seconds and await self.trigger(
                    model, "schedule", {"every_seconds": t.schedule_seconds}
                ):
                    started.append(model)
                    continue
            if (
                t.outcome_count > 0
                and new_outcomes >= t.outcome_count
                and await self.trigger(model, "outcome_count", {"new_outcomes": new_outcomes})
            ):
                started.append(model)
        return started
