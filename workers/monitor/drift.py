"""Input and output drift per model version: the latest window of predictions against a
reference, feature by feature, with one DriftDetected per episode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from schemas import DriftDetected
from workers import metrics
from workers.monitor import sql
from workers.monitor.drift_methods import DriftResult, compare, is_numeric
from workers.monitor.episodes import EpisodeTracker
from workers.monitor.sql import DriftRow
from workers.publish import EventPublisher, Listener, notify, publish_or_forget
from workers.settings import DriftConfig, ModelConfig, Settings

log = logging.getLogger(__name__)
PREDICTION = "__prediction__"


@dataclass(frozen=True)
class Reference:
    """What "normal" looks like for a version: the features it was trained on when the
    registry knows its training window, else its first predictions in production. The
    prediction's own reference is always its first predictions (training rows were
    scored by another model)."""

    features: list[dict[str, Any]]
    predictions: list[float]
    ends_at: datetime  # current windows start after this
    source: str  # "training" or "traffic"


@dataclass(frozen=True)
class FeatureVerdict:
    feature: str
    result: DriftResult


def feature_names(cfg: ModelConfig, reference: Sequence[dict[str, Any]]) -> list[str]:
    if cfg.features:
        return list(cfg.features)
    seen: dict[str, None] = {}
    for row in reference:
        seen.update(dict.fromkeys(row))
    return sorted(seen)


def judge(
    cfg: ModelConfig,
    reference: Sequence[dict[str, Any]],
    current: Sequence[dict[str, Any]],
    ref_predictions: Sequence[float],
    cur_predictions: Sequence[float],
) -> list[FeatureVerdict]:
    """Compare every feature and the prediction. Pure."""
    drift: DriftConfig = cfg.monitor.drift
    verdicts = []
    for name in feature_names(cfg, reference):
        ref = [row.get(name) for row in reference]
        cur = [row.get(name) for row in current]
        numeric = is_numeric(ref)
        method = drift.numeric_method if numeric else drift.categorical_method
        result = compare(
            ref, cur, drift, method=method, kind="numeric" if numeric else "categorical"
        )
        verdicts.append(FeatureVerdict(name, result))
    verdicts.append(
        FeatureVerdict(
            PREDICTION,
            compare(
                ref_predictions,
                cur_predictions,
                drift,
                method=drift.prediction_method,
                kind="numeric",
            ),
        )
    )
    return verdicts


class DriftEvaluator:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.clock = clock
        self._references: dict[tuple[str, str], Reference] = {}
        self._episodes: dict[str, EpisodeTracker] = {
            name: EpisodeTracker(clear_after=cfg.monitor.drift.clear_after)
            for name, cfg in settings.models.items()
        }
        self._last_seen: dict[tuple[str, str], tuple[datetime, int]] = {}
        self.listeners: list[Listener] = []

    async def _reference(self, model: str, version: str, size: int) -> Reference | None:
        key = (model, version)
        ref = self._references.get(key)
        if ref is not None:
            return ref
        async with self.pool.acquire() as conn:
            traffic = await sql.reference_rows(conn, model, version, size)
            window = await sql.training_window(conn, model, version)
            training = (
                await sql.training_rows(conn, model, window[0], window[1], size) if window else []
            )
        full = len(traffic) >= size
        if len(training) >= min(size, self.settings.models[model].monitor.drift.min_samples):
            ref = Reference(
                features=[r["features"] for r in training],
                predictions=[r["prediction"] for r in traffic] if full else [],
                ends_at=traffic[-1]["predicted_at"] if full else datetime.min.replace(tzinfo=UTC),
                source="training",
            )
            if full:  # complete: the prediction has its reference too
                self._references[key] = ref
            return ref
        if not full:
            return None  # still filling: the first `size` predictions are the reference
        ref = Reference(
            features=[r["features"] for r in traffic],
            predictions=[r["prediction"] for r in traffic],
            ends_at=traffic[-1]["predicted_at"],
            source="traffic",
        )
        self._references[key] = ref
        return ref

    async def tick(self) -> list[DriftDetected]:
        now = self.clock()
        since = now - timedelta(seconds=self.settings.monitoring.active_version_seconds)
        async with self.pool.acquire() as conn:
            versions = await sql.active_versions(conn, sorted(self.settings.models), since)
        raised: list[DriftDetected] = []
        for v in versions:
            # One model's failure never stops the others' drift checks.
            try:
                raised += await self._check(v["model"], v["model_version"], now)
            except Exception:
                metrics.MONITOR_FAILURES.labels(v["model"], "drift").inc()
                log.exception("drift check of %s %s failed", v["model"], v["model_version"])
        return raised

    async def _check(self, model: str, version: str, now: datetime) -> list[DriftDetected]:
        cfg = self.settings.models[model]
        d = cfg.monitor.drift
        ref = await self._reference(model, version, d.reference_size)
        if ref is None:
            return []
        after = ref.ends_at if ref.source == "traffic" else datetime.min.replace(tzinfo=UTC)
        async with self.pool.acquire() as conn:
            rows = await sql.current_rows(conn, model, version, after, d.window_size)
        if not rows:
            return []
        newest = (rows[0]["predicted_at"], len(rows))
        if self._last_seen.get((model, version)) == newest:
            return []  # nothing new since the last verdict
        self._last_seen[(model, version)] = newest
        current = [r["features"] for r in rows]
        verdicts = judge(
            cfg,
            ref.features,
            current,
            ref.predictions,
            # Predictions after the prediction's reference, so the two never overlap.
            [r["prediction"] for r in rows if r["predicted_at"] > ref.ends_at]
            if ref.predictions
            else [],
        )
        episodes = self._episodes[model]
        window_start, window_end = rows[-1]["predicted_at"], rows[0]["predicted_at"]
        out_rows: list[DriftRow] = []
        raised: list[DriftDetected] = []
        for v in verdicts:
            r = v.result
            started = episodes.observe((model, version, v.feature), r.drifted)
            metrics.DRIFT_ACTIVE.labels(model, version, v.feature).set(
                1 if episodes.active((model, version, v.feature)) else 0
            )
            out_rows.append(
                DriftRow(
                    model,
                    version,
                    v.feature,
                    r.method,
                    r.statistic,
                    r.p_value,
                    r.threshold,
                    r.drifted,
                    started,
                    r.n_reference,
                    r.n_current,
                    window_start,
                    window_end,
                    r.note,
                    now,
                )
            )
            if started and r.statistic is not None:
                metrics.DRIFT_EPISODES.labels(model, v.feature).inc()
                raised.append(
                    DriftDetected(
                        model=model,
                        model_version=version,
                        feature=v.feature,
                        method=r.method,
                        statistic=r.statistic,
                        p_value=r.p_value,
                        threshold=r.threshold,
                        n_reference=r.n_reference,
                        n_current=r.n_current,
                        window_start=window_start,
                        window_end=window_end,
                        detected_at=now,
                    )
                )
        async with self.pool.acquire() as conn:
            await sql.insert_drift_stats(conn, out_rows)

        async def sent(event: DriftDetected) -> None:
            log.warning(
                "drift: %s %s %s %s=%.4f (threshold %.4f)",
                model,
                version,
                event.feature,
                event.method,
                event.statistic,
                event.threshold,
            )
            await notify(self.listeners, event)

        try:
            await publish_or_forget(
                self.publisher,
                self.settings.topics.drift,
                raised,
                key=lambda e: e.model,
                forget=lambda e: episodes.forget((model, version, e.feature)),
                sent=sent,
            )
        except Exception:
            self._last_seen.pop((model, version), None)  # judge this window again
            raise
        return raised

    def active_episodes(self) -> list[tuple[str, ...]]:
        return [k for t in self._episodes.values() for k in t.active_keys()]
