"""The monitor: rolling quality, drift and lag, run by the leader on timers.

It tails matured examples from PostgreSQL by their sequence number, so it never depends
on which worker matured them, and rebuilds its windows from PostgreSQL after a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from schemas import ChallengerAhead, DriftDetected, LagMeasured, Message, QualityAlertRaised
from schemas.base import utc_now
from workers import metrics
from workers.control.signing import signing_key
from workers.db.pool import Conn
from workers.ingest.consumer import ingest_group
from workers.monitor import sql
from workers.monitor.drift import DriftEvaluator
from workers.monitor.episodes import EpisodeTracker
from workers.monitor.error_stream import ErrorStreamMonitor
from workers.monitor.quality import Example, QualityTracker, ReferenceLosses
from workers.monitor.sql import DriftRow, SnapshotRow
from workers.publish import EventPublisher, Listener, notify, publish_or_forget
from workers.retrain.scoring import higher_is_better
from workers.settings import ModelConfig, Settings
from workers.shadow import checkpoint
from workers.shadow import sql as shadow_sql
from workers.shadow.tracker import ShadowTracker

log = logging.getLogger(__name__)
ALL = ""  # the segment of all traffic
# Fewer examples of one version in a row than this are fed one by one: numpy's fixed cost
# per call is worth it only for a run of them.
BULK_MIN = 32


@dataclass
class _Version:
    """Monitoring state of one model version."""

    reference: QualityTracker  # its first matured examples: the quality it showed when new
    reference_size: int
    reference_losses: ReferenceLosses
    trackers: dict[str, QualityTracker] = field(default_factory=dict)  # segment -> tracker
    errors: ErrorStreamMonitor | None = None
    dirty: set[str] = field(default_factory=set)
    # Its quality on the validation rows it was trained with, from its model card: {} for
    # a version trained elsewhere, None until looked up.
    validation: dict[str, float] | None = None
    validation_n: int = 0

    def first_values(self) -> dict[str, float]:
        """Every metric over its first matured examples, once there are enough."""
        if self.reference.total < self.reference_size:
            return {}
        taken = next(iter(self.reference.snapshot().values()), None)
        return {} if taken is None else dict(taken[0])

    def reference_values(self) -> dict[str, float]:
        """The quality it is held to: the better of its first matured examples and its
        validation rows. A version promoted just as the concept changed back first sees
        data it does not know; its validation rows still say how good it can be."""
        return {m: self.reference_for(m)[0] for m in self._known_metrics()}

    def _known_metrics(self) -> set[str]:
        return set(self.first_values()) | set(self.validation or {})

    def reference_for(self, metric: str) -> tuple[float, int]:
        """(reference value, how many examples it rests on) for one known metric."""
        first = self.first_values().get(metric)
        held_out = (self.validation or {}).get(metric)
        if held_out is not None and (
            first is None or (held_out > first if higher_is_better(metric) else held_out < first)
        ):
            return held_out, self.validation_n
        assert first is not None, f"no reference for {metric}"
        return first, self.reference.total


class MonitorService:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        clock: Callable[[], datetime] = utc_now,
        checkpoint_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.clock = clock
        self.models = settings.models
        self._versions: dict[tuple[str, str], _Version] = {}
        self._seq = 0
        self._warm = False
        self._alerts = EpisodeTracker(clear_after=settings.monitoring.alert_clear_after)
        self._last_snapshot: datetime | None = None
        self.drift = DriftEvaluator(settings, pool, publisher, clock)
        self.shadows = {
            name: ShadowTracker(name, cfg)
            for name, cfg in settings.models.items()
            if cfg.shadow.challengers
        }
        self._checkpoint_key = checkpoint_key or signing_key(settings)
        self._checkpointed: dict[tuple[str, str], int] = {}
        # Versions serving again (recalled, rolled back to): their windows restart at the
        # next tick, the only writer of the monitor's state.
        self._restarts: set[tuple[str, str]] = set()
        # Called with every alert the monitor publishes (the retrain triggers listen).
        self.listeners: list[Listener] = []
        self.drift.listeners = self.listeners

    # -- quality ---------------------------------------------------------------------

    def _with_features(self) -> bool:
        return bool(self.shadows) or self._segmented()

    def _segmented(self) -> bool:
        return any(m.monitor.segments for m in self.models.values())

    async def _challenger_features(
        self, conn: Conn, rows: list[Any]
    ) -> dict[int, dict[str, Any]] | None:
        """The features of the rows the challengers can learn from now (what their budget
        allows); None when the rows carry their features already (segments need them)."""
        if not self.shadows or not rows or rows[0]["features"] is not None:
            return None
        wanted: list[int] = []
        for model, shadow in self.shadows.items():
            n = shadow.allowance()
            if n:
                mine = (r for r in rows if r["model"] == model and shadow.wants(r["prediction_id"]))
                wanted += [r["matured_seq"] for r in itertools.islice(mine, n)]
        return await sql.features_by_seq(conn, wanted) if wanted else {}

    def _state(self, model: str, version: str) -> _Version:
        key = (model, version)
        state = self._versions.get(key)
        if state is None:
            m = self.models[model].monitor
            state = self._versions[key] = _Version(
                reference=QualityTracker(self.models[model].task, (m.reference_size,), ()),
                reference_size=m.reference_size,
                reference_losses=ReferenceLosses(self.models[model].task),
                errors=ErrorStreamMonitor(m.error_detector, reference_size=m.reference_size),
            )
        return state

    def restart(self, model: str, version: str) -> None:
        """A version serves again: its windows, error detector and alert episodes start
        fresh, as a new version's would; its reference quality stays."""
        self._restarts.add((model, version))

    def _apply_restarts(self) -> None:
        for model, version in self._restarts:
            self._alerts.drop((model, version))
            state = self._versions.get((model, version))
            if state is not None:
                m = self.models[model].monitor
                state.trackers.clear()
                state.dirty.clear()
                state.errors = ErrorStreamMonitor(m.error_detector, reference_size=m.reference_size)
                log.info("%s %s serves again: its monitoring windows start afresh", model, version)
        self._restarts.clear()

    def ingestion_lag(self, lag: int | None) -> None:
        """The ingest group's consumer lag, probed: while it is over a model's
        busy_lag_events its challengers learn within busy_cpu_share, not max_cpu_share."""
        for name, shadow in self.shadows.items():
            busy = lag is not None and lag > shadow.cfg.shadow.busy_lag_events
            if busy != shadow.busy:
                if busy:
                    log.info(
                        "ingestion is %d messages behind: %s's challengers learn with at most "
                        "%.2g of a core until it catches up",
                        lag,
                        name,
                        shadow.cfg.shadow.busy_cpu_share,
                    )
                else:
                    log.info("ingestion caught up: %s's challengers learn at full budget", name)
                shadow.busy = busy

    def degraded(self, model: str, version: str) -> bool:
        """A quality alert or an error-stream episode of this version is open. Before the
        monitor has read its history it cannot tell, and says so by answering yes."""
        if not self._warm:
            return True
        if any(k[0] == model and k[1] == version for k in self._alerts.active_keys()):
            return True
        state = self._versions.get((model, version))
        return bool(state and state.errors and state.errors.in_episode)

    def reference_quality(self, model: str, version: str) -> dict[str, float]:
        state = self._versions.get((model, version))
        return {} if state is None else state.reference_values()

    def _tracker(self, cfg: ModelConfig, state: _Version, segment: str) -> QualityTracker:
        tracker = state.trackers.get(segment)
        if tracker is None:
            m = cfg.monitor
            tracker = state.trackers[segment] = QualityTracker(
                cfg.task, m.count_windows, m.time_windows_seconds
            )
        return tracker

    async def _warm_start(self) -> None:
        """Refill the windows from PostgreSQL; alerts stay quiet for history."""
        now = self.clock()
        longest_count = max(
            (max(m.monitor.count_windows, default=0) for m in self.models.values()), default=0
        )
        longest_time = max(
            (max(m.monitor.time_windows_seconds, default=0.0) for m in self.models.values()),
            default=0.0,
        )
        reference = max((m.monitor.reference_size for m in self.models.values()), default=0)
        async with self.pool.acquire() as conn:
            self._seq = await sql.max_seq(conn)
            for ck in await shadow_sql.load(conn, sorted(self.shadows)):
                try:
                    state = checkpoint.load(bytes(ck["state"]), ck["digest"], self._checkpoint_key)
                except Exception as exc:
                    log.error(
                        "challenger %s/%s starts cold: %s", ck["model"], ck["challenger"], exc
                    )
                    continue
                if ck["challenger"] in self.shadows[ck["model"]].challengers:
                    self.shadows[ck["model"]].restore(ck["challenger"], state)
                    self._checkpointed[(ck["model"], ck["challenger"])] = ck["learned"]
            rows = await sql.warm_start(
                conn,
                sorted(self.models),
                longest_count,
                now - timedelta(seconds=longest_time),
                self._with_features(),
                self._seq,
                reference,
            )
        await asyncio.to_thread(self._feed_rows, rows, alerting=False)
        self._warm = True
        log.info("monitor warmed up from %d stored examples (seq %d)", len(rows), self._seq)

    def _feed(self, ex: Example, *, alerting: bool, windows: bool = True) -> list[DriftDetected]:
        cfg = self.models.get(ex.model)
        if cfg is None:
            return []
        state = self._state(ex.model, ex.version)
        if state.reference.total < state.reference_size:
            state.reference.update(ex.prediction, ex.label, ex.matured_at)
            state.reference_losses.update(ex.prediction, ex.label)
        if not windows:
            if state.errors:
                state.errors.update(ex.prediction - ex.label)
            return []
        segments = [ALL] + [
            f"{name}={ex.features[name]}" for name in cfg.monitor.segments if name in ex.features
        ]
        for segment in segments:
            self._tracker(cfg, state, segment).update(ex.prediction, ex.label, ex.matured_at)
            state.dirty.add(segment)
        self._learn(
            ex.model, ex.seq, ex.prediction_id, ex.features, ex.learnable, ex.prediction, ex.label
        )
        shift = self._error_shift(
            state, ex.model, ex.version, ex.prediction - ex.label, ex.matured_at
        )
        return [shift] if shift is not None and alerting else []

    def _learn(
        self,
        model: str,
        seq: int,
        prediction_id: str,
        features: dict[str, Any],
        learnable: bool,
        prediction: float,
        label: float,
    ) -> None:
        """The challengers' step for one example (skipped when its features were not read)."""
        shadow = self.shadows.get(model)
        if shadow is None:
            return
        if not learnable:
            shadow.skip()
            return
        try:
            shadow.observe(seq, prediction_id, features, prediction, label)
        except Exception:
            # A challenger that cannot learn from an example skips it; counted, logged.
            metrics.MONITOR_FAILURES.labels(model, "shadow").inc()
            log.exception("shadow challengers of %s skipped example %s", model, seq)

    def _error_shift(
        self, state: _Version, model: str, version: str, error: float, at: datetime
    ) -> DriftDetected | None:
        shift = state.errors.update(error) if state.errors else None
        if shift is None:
            return None
        return DriftDetected(
            model=model,
            model_version=version,
            feature="__error__",
            method=shift.method,
            statistic=shift.mean_after,
            threshold=shift.mean_before,
            n_reference=shift.n_seen,
            n_current=1,
            window_end=at,
        )

    def _feed_rows(
        self,
        rows: list[Any],
        *,
        alerting: bool,
        features: dict[int, dict[str, Any]] | None = None,
    ) -> list[DriftDetected]:
        found: list[DriftDetected] = []
        if not alerting:
            for row in rows:
                # In a warm start a version's reference rows older than its windows set its
                # reference only (in_window false).
                windows = bool(row["in_window"])
                found += self._feed(_example(row, features), alerting=False, windows=windows)
            return found
        for (model, version), run in itertools.groupby(
            rows, key=lambda r: (r["model"], r["model_version"])
        ):
            found += self._feed_run(model, version, list(run), features)
        return found

    def _feed_run(
        self,
        model: str,
        version: str,
        run: list[Any],
        features: dict[int, dict[str, Any]] | None,
    ) -> list[DriftDetected]:
        """Live examples of one version, in order. Its windows take them in bulk (numpy:
        they were half the monitor's CPU one by one); challengers and the error detector
        still see each one. Segmented models, a reference still filling and short runs go one
        by one."""
        cfg = self.models.get(model)
        if cfg is None:
            return []
        state = self._state(model, version)
        found: list[DriftDetected] = []
        filling = max(state.reference_size - state.reference.total, 0)
        # A short run (versions or models interleaved) costs less one by one than in numpy.
        bulk = not cfg.monitor.segments and len(run) - filling >= BULK_MIN
        one_by_one = filling if bulk else len(run)
        for row in run[:one_by_one]:
            found += self._feed(_example(row, features), alerting=True)
        run = run[one_by_one:]
        if not run:
            return found
        n = len(run)
        predictions = np.fromiter((r["prediction"] for r in run), np.float64, n)
        labels = np.fromiter((r["label"] for r in run), np.float64, n)
        at = np.fromiter((r["matured_at"].timestamp() for r in run), np.float64, n)
        self._tracker(cfg, state, ALL).update_many(predictions, labels, at)
        state.dirty.add(ALL)
        learning = model in self.shadows
        for row, prediction, label in zip(run, predictions.tolist(), labels.tolist(), strict=True):
            if learning:
                feats, learnable = _features(row, features)
                seq, pid = row["matured_seq"], row["prediction_id"]
                self._learn(model, seq, pid, feats, learnable, prediction, label)
            shift = self._error_shift(state, model, version, prediction - label, row["matured_at"])
            if shift is not None:
                found.append(shift)
        return found

    async def tick_quality(self) -> int:
        """Feed newly matured examples; snapshot on cadence and on alert. Returns how many."""
        if not self._warm:
            await self._warm_start()
        self._apply_restarts()
        now = self.clock()
        fed = 0
        error_alerts: list[DriftDetected] = []
        batch = self.settings.monitoring.tail_batch
        # A pass feeds at most one interval's worth of time: catching up on a backlog
        # still checks alerts and writes snapshots every interval, not once at the end.
        budget = self.settings.monitoring.quality_interval_seconds
        began = time.monotonic()
        while True:
            async with self.pool.acquire() as conn:
                rows = await sql.tail_examples(conn, self._seq, batch, self._segmented())
                features = await self._challenger_features(conn, rows)
            # Trackers and challengers are CPU work: a thread keeps the event loop free
            # (this tick is the only writer of the monitor's state; readers only look up).
            error_alerts += await asyncio.to_thread(
                self._feed_rows, rows, alerting=True, features=features
            )
            if rows:
                self._seq = rows[-1]["matured_seq"]
            fed += len(rows)
            if len(rows) < batch or time.monotonic() - began >= budget:
                break
        await self._look_up_validation()
        snapshots, alerts = self._check_alerts(now)
        cadence = self.settings.monitoring.snapshot_interval_seconds
        if self._last_snapshot is None or (now - self._last_snapshot).total_seconds() >= cadence:
            snapshots += self._cadence_snapshots(now)
            snapshots += await self._estimated_snapshots(now)
            self._last_snapshot = now
        ahead = self._challengers_ahead(now)
        if self._last_snapshot == now:
            snapshots += self._shadow_snapshots(now)
        drift_rows = [_error_row(a) for a in error_alerts]
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.insert_snapshots(conn, snapshots)
            await sql.insert_drift_stats(conn, drift_rows)
            await shadow_sql.save(conn, self._due_checkpoints())
        for event in ahead:
            log.warning(
                "challenger %s of %s is ahead: %s %.4f vs champion %.4f",
                event.challenger,
                event.model,
                event.metric,
                event.challenger_value,
                event.champion_value,
            )
            await self.publisher.publish(self.settings.topics.models, event, key=event.model)
        await publish_or_forget(
            self.publisher,
            self.settings.topics.drift,
            alerts,
            key=lambda a: a.model,
            forget=lambda a: self._alerts.forget((a.model, a.model_version, a.metric, a.window)),
            sent=self._count_alert,
        )
        for shift in error_alerts:
            log.warning(
                "error stream of %s %s rose: %.4f -> %.4f",
                shift.model,
                shift.model_version,
                shift.threshold,
                shift.statistic,
            )
            await self.publisher.publish(self.settings.topics.drift, shift, key=shift.model)
        raised: list[Message] = [*alerts, *error_alerts, *ahead]
        for message in raised:
            await notify(self.listeners, message)
        return fed

    async def _count_alert(self, alert: QualityAlertRaised) -> None:
        metrics.QUALITY_ALERTS.labels(alert.model, alert.metric).inc()

    async def _estimated_snapshots(self, now: datetime) -> list[SnapshotRow]:
        """Estimated accuracy of each classifier's latest predictions, before labels."""
        rows: list[SnapshotRow] = []
        since = now - timedelta(seconds=self.settings.monitoring.active_version_seconds)
        for model, cfg in self.models.items():
            if cfg.task != "binary" or not cfg.monitor.count_windows:
                continue
            last = cfg.monitor.count_windows[0]
            try:
                async with self.pool.acquire() as conn:
                    found = await sql.estimated_accuracy(conn, model, since, last)
            except Exception:
                # One model's failure never stops the others' monitoring.
                metrics.MONITOR_FAILURES.labels(model, "estimated_accuracy").inc()
                log.exception("estimated accuracy of %s failed", model)
                continue
            for r in found:
                rows.append(
                    SnapshotRow(
                        model,
                        r["model_version"],
                        ALL,
                        f"last_{last}",
                        "estimated_accuracy",
                        float(r["value"]),
                        r["n"],
                        "cadence",
                        now,
                    )
                )
                metrics.ROLLING.labels(
                    model, r["model_version"], f"last_{last}", "estimated_accuracy"
                ).set(float(r["value"]))
        return rows

    def _challengers_ahead(self, now: datetime) -> list[ChallengerAhead]:
        return [
            ChallengerAhead(
                model=model,
                challenger=a.challenger,
                metric=a.metric,
                challenger_value=a.challenger_value,
                champion_value=a.champion_value,
                improvement=a.improvement,
                examples=a.examples,
                detected_at=now,
            )
            for model, shadow in self.shadows.items()
            for a in shadow.ahead()
        ]

    def _shadow_snapshots(self, now: datetime) -> list[SnapshotRow]:
        """Challengers and the champion, scored on the same examples, side by side."""
        rows: list[SnapshotRow] = []
        for model, shadow in self.shadows.items():
            window = f"shadow_{self.models[model].shadow.window}"
            for key, (mine, champ, n) in shadow.standings().items():
                rows.append(
                    SnapshotRow(
                        model,
                        f"challenger:{key}",
                        ALL,
                        window,
                        shadow.metric_name,
                        mine,
                        n,
                        "cadence",
                        now,
                    )
                )
                rows.append(
                    SnapshotRow(
                        model,
                        f"champion-vs:{key}",
                        ALL,
                        window,
                        shadow.metric_name,
                        champ,
                        n,
                        "cadence",
                        now,
                    )
                )
                metrics.CHALLENGER.labels(model, key, "challenger").set(mine)
                metrics.CHALLENGER.labels(model, key, "champion").set(champ)
            metrics.SHADOW_SKIPPED.labels(model).set(shadow.skipped)
        return rows

    def _due_checkpoints(self) -> list[tuple[str, str, bytes, str, int, int]]:
        rows = []
        for model, shadow in self.shadows.items():
            every = self.models[model].shadow.checkpoint_every
            for key, ch in shadow.challengers.items():
                last = self._checkpointed.get((model, key), 0)
                if ch.learned - last >= every:
                    blob, digest = checkpoint.dump(ch.state(), self._checkpoint_key)
                    rows.append((model, key, blob, digest, ch.seq, ch.learned))
                    self._checkpointed[(model, key)] = ch.learned
        return rows

    async def _look_up_validation(self) -> None:
        """Each new version's validation quality, from the registry, once."""
        new = [(key, st) for key, st in self._versions.items() if st.validation is None]
        if not new:
            return
        async with self.pool.acquire() as conn:
            for (model, version), state in new:
                state.validation, state.validation_n = await sql.validation_quality(
                    conn, model, version
                )

    def _check_alerts(self, now: datetime) -> tuple[list[SnapshotRow], list[QualityAlertRaised]]:
        rows: list[SnapshotRow] = []
        alerts: list[QualityAlertRaised] = []
        for (model, version), state in self._versions.items():
            rules = self.models[model].monitor.alerts
            tracker = state.trackers.get(ALL)
            if not rules or tracker is None:
                continue
            snap = tracker.snapshot()
            for rule in rules:
                if rule.window not in snap or rule.metric not in snap[rule.window][0]:
                    continue
                values, n = snap[rule.window]
                value = values[rule.metric]
                key = (model, version, rule.metric, rule.window)
                reference, n_ref = (
                    state.reference_for(rule.metric)
                    if rule.metric in state.reference_values()
                    else (None, 0)
                )
                significant = reference is None or state.reference_losses.significant(
                    rule.metric, value, reference, n, n_ref, rule.z, up=rule.direction == "above"
                )
                if self._alerts.observe(key, rule.breached(value, n, reference, significant)):
                    bound = rule.bound(reference)
                    assert bound is not None
                    alerts.append(
                        QualityAlertRaised(
                            model=model,
                            model_version=version,
                            metric=rule.metric,
                            window=rule.window,
                            value=value,
                            bound=bound,
                            direction=rule.direction,
                            reference=reference,
                            n=n,
                            raised_at=now,
                        )
                    )
                    rows += [
                        SnapshotRow(model, version, ALL, rule.window, m, v, n, "alert", now)
                        for m, v in values.items()
                    ]
                    log.warning(
                        "%s %s: %s %s = %.4f crossed %s",
                        model,
                        version,
                        rule.window,
                        rule.metric,
                        value,
                        bound,
                    )
        return rows, alerts

    def _cadence_snapshots(self, now: datetime) -> list[SnapshotRow]:
        rows: list[SnapshotRow] = []
        for (model, version), state in self._versions.items():
            for segment in sorted(state.dirty):
                for window, (values, n) in state.trackers[segment].snapshot().items():
                    for metric, value in values.items():
                        rows.append(
                            SnapshotRow(
                                model, version, segment, window, metric, value, n, "cadence", now
                            )
                        )
                        if segment == ALL:
                            metrics.ROLLING.labels(model, version, window, metric).set(value)
            state.dirty.clear()
        return rows

    def alerting(self) -> list[tuple[str, ...]]:
        return self._alerts.active_keys()

    # -- lag -------------------------------------------------------------------------

    async def lag_report(self, partitions: list[Any]) -> LagMeasured:
        now = self.clock()
        span = self.settings.monitoring.lag_window_seconds
        since = now - timedelta(seconds=span)
        async with self.pool.acquire() as conn:
            delays = await sql.label_delays(conn, since, list(self.settings.models))
            done = await sql.completeness(conn, since, list(self.settings.models))
            pending_total, oldest = await sql.pending(conn)
        total = done["total"]
        report = LagMeasured(
            consumer_group=ingest_group(self.settings),
            partitions=partitions,
            label_delay_p50_seconds=delays[0] if delays else None,
            label_delay_p90_seconds=delays[1] if delays else None,
            label_delay_p99_seconds=delays[2] if delays else None,
            window_seconds=span,
            predictions_in_window=total,
            share_with_outcome=done["with_outcome"] / total if total else None,
            share_no_outcome=done["no_outcome"] / total if total else None,
            share_pending=done["pending"] / total if total else None,
            oldest_pending_at=oldest,
            pending_total=pending_total,
            measured_at=now,
        )
        metrics.PENDING.set(pending_total)
        if delays:
            for q, v in zip(("50", "90", "99"), delays, strict=True):
                metrics.LABEL_DELAY.labels(q).set(v)
        for p in partitions:
            if p.lag is not None:
                metrics.CONSUMER_LAG.labels(p.topic, str(p.partition)).set(p.lag)
        await self.publisher.publish(self.settings.topics.lag, report, key=self.settings.app_id)
        return report


def _features(
    row: asyncpg.Record, features: dict[int, dict[str, Any]] | None
) -> tuple[dict[str, Any], bool]:
    """A row's features and whether challengers can learn from it. ``features``: read
    apart for some rows (see _challenger_features); the others are not learnable."""
    feats = row["features"]
    learnable = True
    if feats is None and features is not None:
        feats = features.get(row["matured_seq"])
        learnable = feats is not None
    return feats or {}, learnable


def _example(row: asyncpg.Record, features: dict[int, dict[str, Any]] | None = None) -> Example:
    feats, learnable = _features(row, features)
    return Example(
        seq=row["matured_seq"],
        prediction_id=row["prediction_id"],
        model=row["model"],
        version=row["model_version"],
        prediction=row["prediction"],
        label=row["label"],
        matured_at=row["matured_at"],
        features=feats,
        learnable=learnable,
    )


def _error_row(alert: DriftDetected) -> DriftRow:
    return DriftRow(
        model=alert.model,
        version=alert.model_version,
        feature=alert.feature,
        method=alert.method,
        statistic=alert.statistic,
        p_value=None,
        threshold=alert.threshold,
        drifted=True,
        episode_start=True,
        n_reference=alert.n_reference,
        n_current=alert.n_current,
        window_start=None,
        window_end=alert.window_end,
        note="mean absolute error rose from threshold to statistic",
        computed_at=alert.detected_at,
    )
