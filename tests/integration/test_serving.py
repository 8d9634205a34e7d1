"""The serving client on the real broker and PostgreSQL: it loads the champion from the
registry, reloads on a promotion without a gap, splits a canary, blends and thresholds, and
falls back when no model can be loaded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from schemas import ModelPromoted, PredictionMade
from tests.conftest import TEST_MODELS, SettingsFactory
from tests.integration.kafka import read_topic
from workers.errors import OutcomeLoopError
from workers.producer import EventProducer
from workers.registry.service import Registry
from workers.retrain.features import FeatureSpec
from workers.retrain.models import LIGHTGBM_FILE, Task, TrainedModel, fit_model
from workers.serving.client import Answer, ServingClient
from workers.serving.policy import ServingOptions, in_canary
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

FEATURES = ("x", "channel")
SMALL = {"n_estimators": 30, "min_child_samples": 5}
PROBES: list[Mapping[str, Any]] = [
    {"x": float(x), "channel": channel}
    for x in np.linspace(0.0, 1.0, 11)
    for channel in ("search", "social")
]


def training_rows(n: int = 240) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [
        {"x": float(rng.uniform()), "channel": "search" if i % 2 else "social"} for i in range(n)
    ]


def fit(task: Task, label: Callable[[Mapping[str, Any]], float]) -> TrainedModel:
    rows = training_rows()
    spec = FeatureSpec.infer(FEATURES, rows)
    return fit_model("lightgbm", task, spec, rows, [label(r) for r in rows], params=SMALL)


def rising(row: Mapping[str, Any]) -> float:
    return 0.1 + 0.5 * float(row["x"]) + (0.05 if row["channel"] == "search" else 0.0)


def falling(row: Mapping[str, Any]) -> float:
    return 0.9 - 0.6 * float(row["x"])


def bought(row: Mapping[str, Any]) -> float:
    return 1.0 if float(row["x"]) > 0.5 else 0.0


@dataclass
class Registered:
    models: dict[str, TrainedModel]  # version -> the model fitted in the test
    dirs: dict[str, Path]
    promoted: ModelPromoted | None


async def register(
    pool: asyncpg.Pool,
    tmp_path: Path,
    model: str,
    fitted: dict[str, TrainedModel],
    *,
    promote: str | None,
) -> Registered:
    """Saves each fitted version into its own directory, registers it as a candidate and
    promotes ``promote`` (if given) to champion."""
    registry = Registry(pool)
    dirs: dict[str, Path] = {}
    for version, trained in fitted.items():
        directory = tmp_path / "artifacts" / model / version
        directory.mkdir(parents=True)
        hashes = trained.save(directory)
        await registry.register(
            model=model,
            version=version,
            status="candidate",
            kind="lightgbm",
            artifact_dir=str(directory),
            files=hashes,
            card={},
        )
        dirs[version] = directory
    promoted = None
    if promote is not None:
        promoted = await registry.promote(model, promote, by="test", reason="first champion")
    return Registered(fitted, dirs, promoted)


async def two_ctr_versions(
    pool: asyncpg.Pool, tmp_path: Path, *, promote: str | None = "v1"
) -> Registered:
    return await register(
        pool,
        tmp_path,
        "ctr",
        {"v1": fit("regression", rising), "v2": fit("regression", falling)},
        promote=promote,
    )


def predicted(trained: TrainedModel, features: Mapping[str, Any]) -> float:
    return float(trained.predict([features])[0])


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    s = make_settings(models=dict(TEST_MODELS))
    await ensure_topics(s)
    return s


ClientFactory = Callable[..., ServingClient]


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[ClientFactory]:
    made: list[ServingClient] = []

    def make(model: str, **kwargs: Any) -> ServingClient:
        client = ServingClient(settings, model, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.stop()


async def read_predictions(settings: Settings, expected: int) -> list[PredictionMade]:
    records = await read_topic(settings, settings.topics.predictions, expected)
    return [PredictionMade.model_validate_json(r.value) for r in records]  # type: ignore[attr-defined]


async def test_the_client_answers_with_the_champion(
    pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    reg = await two_ctr_versions(pool, tmp_path)
    client = clients("ctr")
    await client.start(watch=False)

    assert client.champion is not None and client.champion.version == "v1"
    assert client.candidate is None  # no canary configured
    for features in PROBES:
        answer = client.score(features)
        assert (answer.version, answer.source, answer.uncertain) == ("v1", "model", False)
        assert np.isclose(answer.score, predicted(reg.models["v1"], features))
        assert answer.model_score == answer.score and answer.rule_score is None
    # The two versions really differ, so answering with the wrong one would be caught.
    assert not np.isclose(
        predicted(reg.models["v1"], PROBES[0]), predicted(reg.models["v2"], PROBES[0])
    )
    assert client.stats.answers == len(PROBES)
    assert client.stats.by_version == {"v1": len(PROBES)}
    assert client.stats.fallback_rate == 0.0
    assert np.allclose(client.score_many(PROBES), reg.models["v1"].predict(PROBES))


async def test_a_promotion_reloads_without_a_gap(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    reg = await two_ctr_versions(pool, tmp_path)
    client = clients("ctr")
    await client.start()  # watches the models topic from its end
    features = PROBES[3]
    assert client.score(features).version == "v1"

    answers: list[Answer] = []
    stop = asyncio.Event()

    async def keep_scoring() -> None:
        while not stop.is_set():
            answers.append(client.score(features))
            await asyncio.sleep(0.002)

    scoring = asyncio.create_task(keep_scoring())
    try:
        promoted = await Registry(pool).promote("ctr", "v2", by="test", reason="better")
        assert promoted.previous_version == "v1"
        assert settings.kafka_bootstrap
        async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
            await producer.send(promoted)
            await producer.flush()
        await asyncio.wait_for(client.reloaded.wait(), 20)
        served_at_reload = len(answers)
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await scoring  # re-raises anything score() raised

    assert served_at_reload > 0 and len(answers) > served_at_reload
    assert {a.version for a in answers} <= {"v1", "v2"}
    assert {a.version for a in answers} == {"v1", "v2"}  # served before and after the swap
    assert all(a.source == "model" for a in answers)
    versions = [a.version for a in answers]
    # Once v2 answers, v1 never answers again.
    assert "v1" not in versions[versions.index("v2") :]
    assert all(a.version == "v2" for a in answers[served_at_reload:])
    assert client.champion is not None and client.champion.version == "v2"
    after = client.score(features)
    assert after.version == "v2"
    assert np.isclose(after.score, predicted(reg.models["v2"], features))


async def test_a_canary_splits_by_routing_key_and_emits_its_version(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    reg = await two_ctr_versions(pool, tmp_path)  # v2 stays a candidate
    client = clients("ctr", options=ServingOptions(canary_share=0.5))
    await client.start(watch=False)
    assert client.candidate is not None and client.candidate.version == "v2"

    features = PROBES[5]
    keys = [f"user-{i}" for i in range(200)]
    first = {k: client.score(features, routing_key=k) for k in keys}
    for key, answer in first.items():
        expected = ("v2", "canary") if in_canary(key, 0.5) else ("v1", "model")
        assert (answer.version, answer.source) == expected
        assert np.isclose(answer.score, predicted(reg.models[answer.version], features))
    counts = {s: sum(a.source == s for a in first.values()) for s in ("model", "canary")}
    assert counts["model"] >= 60 and counts["canary"] >= 60, counts
    # One key, one version, every time.
    for key in keys:
        for _ in range(3):
            assert client.score(features, routing_key=key).version == first[key].version

    canary_key = next(k for k in keys if first[k].source == "canary")
    model_key = next(k for k in keys if first[k].source == "model")
    emitted = [
        await client.emit(first[canary_key], features, entity_id=canary_key),
        await client.emit(first[model_key], features, entity_id=model_key),
    ]
    assert [e.model_version for e in emitted] == ["v2", "v1"]

    read = {e.prediction_id: e for e in await read_predictions(settings, expected=2)}
    assert set(read) == {e.prediction_id for e in emitted}
    for event, answer in zip(emitted, (first[canary_key], first[model_key]), strict=True):
        got = read[event.prediction_id]
        assert (got.model, got.model_version) == ("ctr", answer.version)
        assert got.prediction == pytest.approx(answer.score)
        assert got.entity_id == event.entity_id
        assert got.features == features


async def test_blending_and_the_confidence_threshold(
    pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    assert TEST_MODELS["purchase"].task == "binary"
    reg = await register(pool, tmp_path, "purchase", {"b1": fit("binary", bought)}, promote="b1")
    client = clients(
        "purchase",
        options=ServingOptions(confidence_threshold=0.9, blend_weight=0.5),
        rules=lambda f: float(f["x"]),
    )
    await client.start(watch=False)

    flags: list[bool] = []
    for features in PROBES:
        answer = client.score(features)
        model_score = predicted(reg.models["b1"], features)
        assert answer.version == "b1" and answer.source == "model"
        assert np.isclose(answer.model_score or 0.0, model_score)
        assert answer.rule_score == features["x"]
        assert np.isclose(answer.score, 0.5 * model_score + 0.5 * features["x"])
        assert answer.uncertain is (max(answer.score, 1.0 - answer.score) < 0.9)
        flags.append(answer.uncertain)
    # The probes land on both sides of the threshold, so the flag is really tested.
    assert any(flags) and not all(flags)

    # A regression model is never uncertain, whatever its score.
    await register(pool, tmp_path, "ctr", {"v1": fit("regression", rising)}, promote="v1")
    ctr = clients("ctr", options=ServingOptions(confidence_threshold=0.9))
    await ctr.start(watch=False)
    assert not any(ctr.score(f).uncertain for f in PROBES)


def fallback_score(features: Mapping[str, Any]) -> float:
    return 0.25 + 0.1 * float(features["x"])


async def test_an_external_champion_is_answered_by_the_fallback(
    pool: asyncpg.Pool, clients: ClientFactory
) -> None:
    registry = Registry(pool)
    await registry.register(
        model="ctr",
        version="ext1",
        status="candidate",
        kind="external",
        artifact_dir=None,
        files={},
        card={},
    )
    await registry.promote("ctr", "ext1", by="test", reason="served outside")
    client = clients("ctr", fallback=fallback_score)
    await client.start(watch=False)

    assert client.champion is None
    answers = [client.score(f) for f in PROBES[:3]]
    for features, answer in zip(PROBES[:3], answers, strict=True):
        assert (answer.version, answer.source) == ("fallback", "fallback")
        assert answer.score == fallback_score(features)
        assert answer.model_score is None
    assert (client.stats.answers, client.stats.fallbacks) == (3, 3)
    assert client.stats.fallback_rate == 1.0
    assert client.stats.by_version == {"fallback": 3}

    bare = clients("ctr")
    await bare.start(watch=False)
    with pytest.raises(OutcomeLoopError, match="no fallback"):
        bare.score(PROBES[0])


async def test_a_corrupted_artifact_is_answered_by_the_fallback(
    pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    reg = await register(pool, tmp_path, "ctr", {"v1": fit("regression", rising)}, promote=None)
    model_file = reg.dirs["v1"] / LIGHTGBM_FILE
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte: the sha256 no longer matches
    model_file.write_bytes(bytes(data))
    await Registry(pool).promote("ctr", "v1", by="test", reason="champion on disk")

    client = clients("ctr", fallback=fallback_score, fallback_version="rules-v0")
    await client.start(watch=False)
    assert client.champion is None
    answers = [client.score(f) for f in PROBES[:3]]
    assert [(a.version, a.source) for a in answers] == [("rules-v0", "fallback")] * 3
    assert [a.score for a in answers] == [fallback_score(f) for f in PROBES[:3]]
    assert client.stats.fallback_rate == 1.0

    bare = clients("ctr")
    await bare.start(watch=False)
    with pytest.raises(OutcomeLoopError):
        bare.score(PROBES[0])


async def test_a_broken_new_champion_does_not_replace_a_working_one(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path, clients: ClientFactory
) -> None:
    versions = await two_ctr_versions(pool, tmp_path, promote="v1")
    client = clients("ctr")
    await client.start(watch=False)
    model_file = versions.dirs["v2"] / LIGHTGBM_FILE
    model_file.write_bytes(model_file.read_bytes() + b" ")  # corrupted after registering
    await Registry(pool).promote("ctr", "v2", by="test", reason="broken on disk")
    await client.refresh()
    answer = client.score(PROBES[0])
    assert (answer.version, answer.source) == ("v1", "model")
    assert answer.score == pytest.approx(predicted(versions.models["v1"], PROBES[0]))
