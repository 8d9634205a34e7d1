"""The serving client producers use.

    client = ServingClient(settings, "ctr")
    await client.start()                  # loads the champion (sha256 checked)
    answer = client.score(features)       # no I/O: safe on a hot path
    await client.emit(answer, features)   # PredictionMade with a fresh prediction_id

It follows ``ol.models`` and swaps in a newly promoted champion once it has loaded and
verified it, so requests in flight keep being answered by the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from pydantic import ValidationError

from schemas import ModelPromoted, ModelRegistered, ModelRejected, PredictionMade
from workers.db.pool import create_pool
from workers.errors import OutcomeLoopError
from workers.producer import EventProducer
from workers.registry import sql as registry_sql
from workers.retrain.models import TrainedModel, load_model
from workers.serving.policy import ServingOptions, Source, blend, in_canary, uncertain
from workers.settings import Settings
from workers.topics import consumer_at_end

log = logging.getLogger(__name__)
ANSWERS = Counter("ol_serving_answers_total", "Answers by source", ["model", "source"])

RuleScore = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Answer:
    score: float
    version: str
    source: Source
    uncertain: bool = False
    model_score: float | None = None
    rule_score: float | None = None


@dataclass
class Loaded:
    version: str
    model: TrainedModel


@dataclass
class ServingStats:
    answers: int = 0
    fallbacks: int = 0
    by_version: dict[str, int] = field(default_factory=dict)

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.answers if self.answers else 0.0


def _registry_event(raw: bytes) -> ModelRegistered | ModelRejected | None:
    for cls in (ModelRegistered, ModelRejected):
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            continue
    return None


class ServingClient:
    def __init__(
        self,
        settings: Settings,
        model: str,
        *,
        options: ServingOptions | None = None,
        rules: RuleScore | None = None,
        fallback: RuleScore | None = None,
        fallback_version: str = "fallback",
    ) -> None:
        if model not in settings.models:
            raise OutcomeLoopError(f"unknown model {model!r}")
        self.settings = settings
        self.model = model
        self.task = settings.models[model].task
        self.options = options or ServingOptions()
        self.rules = rules
        self.fallback = fallback
        self.fallback_version = fallback_version
        self.champion: Loaded | None = None
        self.candidate: Loaded | None = None
        self.stats = ServingStats()
        self._watcher: asyncio.Task[None] | None = None
        self._producer: EventProducer | None = None
        self._producer_lock = asyncio.Lock()
        self.reloaded = asyncio.Event()

    # -- loading ------------------------------------------------------------------

    async def start(self, *, watch: bool = True) -> None:
        # Listen first, then load: a promotion in between is then seen, not missed.
        consumer = await self._consumer() if watch else None
        await self.refresh()
        if consumer is not None:
            self._watcher = asyncio.create_task(self._watch(consumer))

    async def refresh(self) -> None:
        """Load the champion (and a candidate, for a canary) from the registry."""
        pool = await create_pool(self.settings, max_size=1)
        try:
            async with pool.acquire() as conn:
                champ = await registry_sql.champion(conn, self.model)
                cand = None
                if self.options.canary_share > 0:
                    cand = await conn.fetchrow(
                        "SELECT * FROM model_versions WHERE model = $1 AND status = 'candidate'"
                        " ORDER BY created_at DESC LIMIT 1",
                        self.model,
                    )
        finally:
            await pool.close()
        champion = await self._load(champ) if champ is not None else None
        candidate = await self._load(cand) if cand is not None else None
        # A champion that has an artifact but failed to load is not an answer: keep serving
        # the one already loaded rather than falling back.
        if champion is not None or champ is None or not champ["artifact_dir"]:
            self.champion = champion
        self.candidate = candidate

    async def _load(self, row: Any) -> Loaded | None:
        if not row["artifact_dir"]:
            return None  # trained outside Outcome Loop: nothing to load, the fallback answers
        try:
            model = await asyncio.to_thread(load_model, Path(row["artifact_dir"]), row["files"])
        except Exception as exc:
            log.error(
                "%s %s could not be loaded (%s); keeping what is loaded",
                self.model,
                row["version"],
                exc,
            )
            return None
        return Loaded(row["version"], model)

    async def _consumer(self) -> AIOKafkaConsumer:
        # At the end before anyone promotes, so no promotion is missed.
        consumer: AIOKafkaConsumer = await consumer_at_end(
            self.settings, self.settings.topics.models
        )
        return consumer

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        try:
            async for record in consumer:
                try:
                    event = ModelPromoted.model_validate_json(record.value)
                except ValidationError:
                    # A new candidate, or one rejected or expired: the canary follows.
                    other = _registry_event(record.value)
                    ours = other is not None and other.model == self.model
                    if ours and self.options.canary_share > 0:
                        await self._reload()
                    continue
                if event.model != self.model:
                    continue
                log.info("%s: %s promoted; reloading", self.model, event.version)
                self.reloaded.clear()
                await self._reload()
                self.reloaded.set()
        except asyncio.CancelledError:
            pass
        finally:
            await consumer.stop()

    async def _reload(self) -> None:
        try:
            await self.refresh()
        except Exception:
            # One failed reload (PostgreSQL briefly away) must not end the watching.
            log.exception("%s: reload failed; keeping what is loaded", self.model)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._producer is not None:
            await self._producer.__aexit__(None, None, None)

    # -- answering ------------------------------------------------------------------

    def score(self, features: Mapping[str, Any], *, routing_key: str | None = None) -> Answer:
        key = routing_key or str(uuid.uuid4())
        loaded, source = self.champion, "model"
        if self.candidate is not None and in_canary(key, self.options.canary_share):
            loaded, source = self.candidate, "canary"
        rule_score = self.rules(features) if self.rules is not None else None
        if loaded is None:
            if self.fallback is None:
                raise OutcomeLoopError(f"no loadable model for {self.model} and no fallback")
            value = self.fallback(features)
            answer = Answer(value, self.fallback_version, "fallback", rule_score=rule_score)
            self.stats.fallbacks += 1
        else:
            model_score = float(loaded.model.predict([features])[0])
            value = blend(model_score, rule_score, self.options.blend_weight)
            answer = Answer(
                value,
                loaded.version,
                source,  # type: ignore[arg-type]
                uncertain(value, self.options.confidence_threshold, self.task),
                model_score=model_score,
                rule_score=rule_score,
            )
        self.stats.answers += 1
        self.stats.by_version[answer.version] = self.stats.by_version.get(answer.version, 0) + 1
        ANSWERS.labels(self.model, answer.source).inc()
        return answer

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Batch scoring with the champion alone (no routing), for offline use."""
        if self.champion is None:
            raise OutcomeLoopError(f"no loadable champion for {self.model}")
        return self.champion.model.predict(rows)

    async def emit(
        self,
        answer: Answer,
        features: Mapping[str, Any],
        *,
        entity_id: str | None = None,
        prediction_id: str | None = None,
    ) -> PredictionMade:
        """Send the PredictionMade this answer stands for; the version that answered is
        recorded, so canary and champion are monitored apart."""
        async with self._producer_lock:  # concurrent first emits must share one producer
            if self._producer is None:
                assert self.settings.kafka_bootstrap is not None
                self._producer = await EventProducer(
                    self.settings.kafka_bootstrap, self.settings.topics
                ).__aenter__()
        event = PredictionMade(
            prediction_id=prediction_id or str(uuid.uuid4()),
            model=self.model,
            model_version=answer.version,
            entity_id=entity_id,
            features=dict(features),
            prediction=answer.score,
        )
        await self._producer.send(event)
        return event

    async def flush(self) -> None:
        """Wait until every emitted PredictionMade is on the broker."""
        if self._producer is not None:
            await self._producer.flush()
