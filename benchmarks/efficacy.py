"""Drift recovery, end to end: does the loop find a change, retrain and recover?

    python -m benchmarks.efficacy [--events 30000] [--rate 300] [--outcome-delay 1.0]
        [--scenarios stationary,abrupt,gradual,drift_back,local] [--tasks regression,binary]
        [--config benchmarks/efficacy.toml] [--write BENCHMARKS.md]

For every (task, scenario) of ``workers/synth/drift_streams.py`` a fresh ``outcomeloop worker``
process runs against the broker and PostgreSQL (the embedded ones, fresh, unless the
environment names others). A producer sends the scenario's predictions at ``--rate`` per
second through the project's ``EventProducer``, each scored at send time by the serving
client (``ServingClient``) once the registry holds a champion with an artifact, else by the
scenario's initial champion, and stamped with the version that scored it. Each outcome
follows its prediction by ``--outcome-delay`` seconds, joined by prediction id. Afterwards
everything is read back from PostgreSQL: the logged predictions and labels, quality alerts,
drift episodes, retrain runs and the champion's history.

Offline, beside it, with the project's own trainer (``train_candidates`` with the model's
candidate kinds, metric and validation share): an oracle trained on the same number of
post-change rows as the promoted model had, knowing exactly where the change began; the
initial champion never retrained; and a fixed schedule that retrains every K events on the
last K labeled rows. The benchmark always exits 0 and says which targets failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from benchmarks import efficacy_sql as esql
from benchmarks import harness
from schemas import OutcomeObserved, PredictionMade
from schemas.base import utc_now
from workers.db.pool import create_pool
from workers.infra.embedded import ensure_infra
from workers.infra.net import free_port
from workers.producer import EventProducer
from workers.registry.adopt import adopt_saved
from workers.registry.service import Registry
from workers.retrain.features import FeatureSpec
from workers.retrain.models import TrainedModel
from workers.retrain.scoring import higher_is_better, score
from workers.retrain.trainer import best, train_candidates
from workers.serving.client import ServingClient
from workers.settings import CONFIG_FILE_ENV, ModelConfig, Settings, child_env
from workers.synth.drift_streams import (
    FEATURES,
    KINDS,
    TASKS,
    Champion,
    DriftStream,
    Kind,
    Row,
    Task,
    make_stream,
)
from workers.worker import prepare

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "benchmarks" / "efficacy.toml"
SECTION = "## Drift recovery (make efficacy)"
LOADED_SECTION = "## Drift recovery on a loaded machine (make efficacy with --cpu-hog)"
# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 180)

TASK_PREFIX: dict[Task, str] = {"regression": "reg", "binary": "bin"}
POST_WINDOW = 2000  # events after a promotion whose quality is compared with the oracle's
SCHEDULE_EVERY = 5000  # the fixed schedule's K
ORACLE_MIN_ROWS = 50
SEED = 7

# Targets ---------------------------------------------------------------------------------------
DETECT_WITHIN: dict[str, int] = {"abrupt": 2000, "gradual": 4000}
PROMOTE_WITHIN: dict[str, int] = {"abrupt": 5000}
ORACLE_FACTOR = 1.15
BEAT_SCHEDULE = ("abrupt", "drift_back")

Report = Callable[[str, int, int], None]


def model_name(task: Task, scenario: Kind) -> str:
    """The model that ``benchmarks/efficacy.toml`` configures for a (task, scenario)."""
    return f"{TASK_PREFIX[task]}_{scenario}"


# Results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    metric: str
    value: float
    n: int
    accuracy: float | None = None  # binary only

    def text(self) -> str:
        if self.n == 0 or math.isnan(self.value):
            return "n/a"
        acc = f" (acc {self.accuracy:.3f})" if self.accuracy is not None else ""
        return f"{self.value:.4f}{acc}"


@dataclass(frozen=True)
class Signal:
    """An alert, a drift episode or a retrain run, placed on the event axis."""

    kind: str  # alert | episode | retrain
    at: datetime
    index: int  # predictions sent by then
    detail: str
    version: str = ""  # the model version an alert or episode is about


@dataclass(frozen=True)
class Promotion:
    version: str
    at: datetime
    index: int  # predictions sent when it was promoted
    first_served: int | None  # first prediction the new champion scored


@dataclass(frozen=True)
class Delivery:
    sent: int
    outcomes_sent: int
    stored: int
    labeled: int
    labeled_rows: int
    pending: int
    outcomes_stored: int
    dead_letters: int
    label_mismatches: int
    send_seconds: float

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.stored) + max(0, self.outcomes_sent - self.outcomes_stored)

    @property
    def doubled(self) -> int:
        return max(0, self.stored - self.sent) + max(0, self.outcomes_stored - self.outcomes_sent)

    @property
    def complete(self) -> bool:
        return (
            self.stored == self.sent == self.labeled == self.labeled_rows
            and self.pending == 0
            and self.lost == 0
            and self.label_mismatches == 0
        )

    def text(self) -> str:
        return (
            f"{self.sent:,} / {self.stored:,} / {self.labeled:,} / {self.pending:,}"
            + (f" / lost {self.lost}" if self.lost else "")
            + (f" / doubled {self.doubled}" if self.doubled else "")
            + (f" / {self.label_mismatches} wrong labels" if self.label_mismatches else "")
        )


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool
    detail: str


@dataclass
class ScenarioResult:
    scenario: Kind
    task: Task
    model: str
    events: int
    rate: float
    delay: float
    metric: str
    onset: int | None
    return_at: int | None
    settled_at: int | None
    signals: list[Signal]
    promotions: list[Promotion]
    runs: list[esql.RunRow]
    delivery: Delivery
    served_by: dict[str, int]
    whole_loop: Quality
    whole_never: Quality
    whole_schedule: Quality
    schedule_every: int
    initial_version: str = "initial"
    post_loop: Quality | None = None
    post_oracle: Quality | None = None
    post_window: tuple[int, int] | None = None
    oracle_rows: tuple[int, int] | None = None  # [first, last] stream rows it trained on
    loop_rows: tuple[int, int] | None = None  # the promoted run's training span, as indices
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    # -- derived ------------------------------------------------------------------------

    def _after(
        self, index: int | None, kinds: Sequence[str], *, retrained_only: bool = False
    ) -> Signal | None:
        if index is None:
            return None
        skipped = ("", self.initial_version) if retrained_only else ()
        return next(
            (
                s
                for s in self.signals
                if s.kind in kinds and s.index >= index and s.version not in skipped
            ),
            None,
        )

    @property
    def before_onset(self) -> Counter[str]:
        """False alarms: signals before the onset; on a stationary stream, all of them."""
        return Counter(s.kind for s in self.signals if self.onset is None or s.index < self.onset)

    @property
    def detection_delay(self) -> int | None:
        first = self._after(self.onset, ("alert", "episode"))
        return None if first is None or self.onset is None else first.index - self.onset

    @property
    def redetection_delay(self) -> int | None:
        """drift_back: from the return to the first alert or episode after it about a
        retrained version (the initial champion is right again after the return)."""
        first = self._after(self.return_at, ("alert", "episode"), retrained_only=True)
        return None if first is None or self.return_at is None else first.index - self.return_at

    def _promotion_after(self, index: int | None) -> Promotion | None:
        if index is None:
            return None
        return next((p for p in self.promotions if p.index >= index), None)

    @property
    def promotion(self) -> Promotion | None:
        return self._promotion_after(self.onset)

    @property
    def promotion_delay(self) -> int | None:
        p = self.promotion
        return None if p is None or self.onset is None else p.index - self.onset

    @property
    def oracle_ratio(self) -> float | None:
        if self.post_loop is None or self.post_oracle is None or self.post_oracle.n == 0:
            return None
        if self.post_oracle.value == 0:
            return math.inf
        return self.post_loop.value / self.post_oracle.value

    def better(self, a: Quality, b: Quality) -> bool:
        if higher_is_better(self.metric):
            return a.value > b.value
        return a.value < b.value

    def targets(self) -> list[Target]:
        out: list[Target] = []
        counts = Counter(s.kind for s in self.signals)
        if self.scenario == "stationary":
            out.append(
                Target(
                    "0 alerts, episodes and retrains on a stationary stream",
                    sum(counts.values()) == 0,
                    f"{counts['alert']} alerts, {counts['episode']} episodes, "
                    f"{counts['retrain']} retrains",
                )
            )
        else:
            limit = DETECT_WITHIN.get(self.scenario)
            delay = self.detection_delay
            if limit is not None:
                out.append(
                    Target(
                        f"detected within {limit:,} events",
                        delay is not None and delay <= limit,
                        "not detected" if delay is None else f"{delay:,} events",
                    )
                )
            limit = PROMOTE_WITHIN.get(self.scenario)
            if limit is not None:
                p = self.promotion_delay
                out.append(
                    Target(
                        f"promoted within {limit:,} events",
                        p is not None and p <= limit,
                        "no promotion" if p is None else f"{p:,} events",
                    )
                )
            ratio = self.oracle_ratio
            out.append(
                Target(
                    f"post-promotion {self.metric} within {ORACLE_FACTOR}x the oracle",
                    ratio is not None and ratio <= ORACLE_FACTOR,
                    f"{ratio:.3f}x"
                    if ratio is not None
                    else "no promotion after the onset"
                    if self.promotion is None
                    else "; ".join(self.notes) or "no oracle",
                )
            )
            out.append(
                Target(
                    "whole stream better than never retraining",
                    self.better(self.whole_loop, self.whole_never),
                    f"{self.whole_loop.value:.4f} vs {self.whole_never.value:.4f}",
                )
            )
            if self.scenario in BEAT_SCHEDULE:
                out.append(
                    Target(
                        f"whole stream better than retraining every {self.schedule_every:,}",
                        self.better(self.whole_loop, self.whole_schedule),
                        f"{self.whole_loop.value:.4f} vs {self.whole_schedule.value:.4f}",
                    )
                )
        out.append(
            Target(
                "every prediction stored and labeled, none pending",
                self.delivery.complete,
                self.delivery.text(),
            )
        )
        return out


# Offline learners ------------------------------------------------------------------------------


def _quality(metric: str, task: Task, labels: NDArray[Any], predictions: NDArray[Any]) -> Quality:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep], p[keep]
    if len(y) == 0:
        return Quality(metric, math.nan, 0)
    accuracy = score("accuracy", y, p) if task == "binary" else None
    return Quality(metric, score(metric, y, p), len(y), accuracy)


def train_like_the_loop(
    cfg: ModelConfig, rows: Sequence[Row], labels: NDArray[Any], seed: int = SEED
) -> TrainedModel:
    """The project's trainer on ``rows`` (oldest first): the model's candidate kinds, its
    metric, its newest-share validation split; the best candidate, as a retrain picks it."""
    n_val = min(max(1, round(len(rows) * cfg.retrain.validation_share)), len(rows) - 1)
    cut = len(rows) - n_val
    spec = FeatureSpec.infer(FEATURES, rows)
    results = train_candidates(
        cfg.task,
        cfg.retrain_metric,
        cfg.retrain.candidates,
        spec,
        list(rows[:cut]),
        labels[:cut],
        list(rows[cut:]),
        labels[cut:],
        dict(cfg.retrain.params),
        seed,
    )
    return best(results).model


def fixed_schedule(
    stream: DriftStream,
    champion: Champion,
    cfg: ModelConfig,
    every: int,
    label_lag: int,
) -> NDArray[np.float64]:
    """Predictions of a model retrained every ``every`` events on the last ``every`` rows
    labeled by then (``label_lag`` events behind), each used for the next ``every`` events."""
    rows = stream.rows
    out = np.empty(len(rows), dtype=np.float64)
    out[: min(every, len(rows))] = champion.predict(rows[:every])
    for start in range(every, len(rows), every):
        end = max(0, start - label_lag)
        lo = max(0, end - every)
        model = train_like_the_loop(cfg, rows[lo:end], stream.labels[lo:end])
        out[start : start + every] = model.predict(rows[start : start + every])
    return out


# The worker ------------------------------------------------------------------------------------


def worker_env(settings: Settings, web_port: int) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a worker subprocess, with its web
    endpoint (for /health) on ``web_port``."""
    sections = ("topics", "worker", "time", "monitoring", "control", "models")
    dumped = json.loads(settings.model_dump_json(include=set(sections)))
    dumped["worker"].update(web_enabled=True, web_host="127.0.0.1", web_port=web_port)
    extra = {f"OL_{key.upper()}": json.dumps(dumped[key]) for key in sections}
    extra.update(OL_APP_ID=settings.app_id, OL_LOG_LEVEL=settings.log_level)
    if settings.registry_dir is not None:
        extra["OL_REGISTRY_DIR"] = str(settings.registry_dir)
    return child_env(settings, **extra)


class WorkerProcess:
    """``python -m workers.cli worker`` as a child process, logging to a file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"],
            env=worker_env(settings, self.port),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    async def wait_consuming(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"the worker exited with {self.proc.returncode}; see {self.log_path}"
                )
            if await asyncio.to_thread(self._healthy):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(
            f"the worker was not consuming after {timeout:.0f}s; see {self.log_path}"
        )

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# Producing -------------------------------------------------------------------------------------


@dataclass
class Sent:
    times: list[datetime]
    versions: list[str]
    outcomes: int = 0
    seconds: float = 0.0


async def produce(
    settings: Settings,
    stream: DriftStream,
    model: str,
    run_id: str,
    rate: float,
    delay: float,
    champion: Champion,
    client: ServingClient,
    report: Report | None = None,
) -> Sent:
    """Send every prediction at its time, scored as a producer would score it, and each
    outcome ``delay`` seconds after its prediction."""
    assert settings.kafka_bootstrap is not None
    n = len(stream)
    sent = Sent(times=[], versions=[])
    began = time.monotonic()
    i = j = 0  # the next prediction and the next outcome to send
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
        while j < n:
            now = time.monotonic() - began
            while i < n and i / rate <= now:
                features = stream.rows[i]
                prediction_id = f"{run_id}-{i}"
                if client.champion is not None:
                    answer = client.score(features, routing_key=prediction_id)
                    value, version = answer.score, answer.version
                else:  # the scenario's own model, trained outside Outcome Loop
                    value, version = champion.score(features), champion.version
                made = utc_now()
                await producer.send(
                    PredictionMade(
                        prediction_id=prediction_id,
                        model=model,
                        model_version=version,
                        features=dict(features),
                        prediction=value,
                        predicted_at=made,
                    )
                )
                sent.times.append(made)
                sent.versions.append(version)
                i += 1
            while j < i and j / rate + delay <= now:
                await producer.send(
                    OutcomeObserved(
                        prediction_id=f"{run_id}-{j}",
                        outcome_kind="measured",
                        value=float(stream.labels[j]),
                        observed_at=utc_now(),
                    )
                )
                sent.outcomes += 1
                j += 1
            if report is not None:
                report("sending", i, n)
            due = min(i / rate if i < n else math.inf, j / rate + delay)
            wait = due - (time.monotonic() - began)
            if wait > 0.002:
                await producer.flush()
                await asyncio.sleep(wait)
            else:
                await asyncio.sleep(0)  # let the serving client see promotions
        await producer.flush()
    sent.seconds = time.monotonic() - began
    return sent


async def adopt_champion(settings: Settings, model: str, champion: Champion) -> None:
    """Register the scenario's initial champion with its artifact (`outcomeloop adopt`), as
    a user bringing a model trained elsewhere would: served from the registry from the
    first event, and an earlier version the loop can recall."""
    with tempfile.TemporaryDirectory() as folder:
        champion.model.save(Path(folder))
        pool = await create_pool(settings, max_size=1)
        try:
            adopted = await adopt_saved(
                settings, Registry(pool), model, champion.version, Path(folder)
            )
        finally:
            await pool.close()
    assert adopted.status == "champion", adopted


async def settle(
    settings: Settings,
    model: str,
    run_id: str,
    n: int,
    worker: WorkerProcess,
    timeout: float,
    report: Report | None = None,
) -> dict[str, int]:
    """Wait for every prediction to be stored and matured, then for a retrain in flight and
    one more monitoring pass; the last counts."""
    pool = await create_pool(settings, max_size=1)
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with pool.acquire() as conn:
                counts = await esql.progress(conn, model, run_id)
            if report is not None:
                report("maturing", counts["stored"] - counts["pending"], n)
            done = counts["stored"] >= n and counts["pending"] == 0
            if done or time.monotonic() > deadline or not worker.alive():
                break
            await asyncio.sleep(0.5)
        grace = time.monotonic() + 120
        while worker.alive() and time.monotonic() < grace:
            async with pool.acquire() as conn:
                if await esql.running_retrains(conn, model) == 0:
                    break
            if report is not None:
                report("waiting for a retrain", n, n)
            await asyncio.sleep(1.0)
        m = settings.monitoring
        await asyncio.sleep(m.quality_interval_seconds + m.drift_interval_seconds + 1.0)
        return counts
    finally:
        await pool.close()


# Evaluating ------------------------------------------------------------------------------------


def _span(dataset: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The earliest 'from' and latest 'to' of a retrain's dataset summary, wherever they are."""
    starts: list[datetime] = []
    ends: list[datetime] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("from"), str) and isinstance(node.get("to"), str):
                try:
                    starts.append(datetime.fromisoformat(node["from"]))
                    ends.append(datetime.fromisoformat(node["to"]))
                except ValueError:
                    pass
            for value in node.values():
                walk(value)

    walk(dataset)
    return (min(starts), max(ends)) if starts else None


def _alerts(rows: Sequence[Mapping[str, Any]], cfg: ModelConfig) -> list[Mapping[str, Any]]:
    """One row per alert: the monitor writes every metric of the window when a rule fires;
    keep the rule's own metric (or the first row of each moment, for rules it lacks)."""
    rules = {(rule.metric, rule.window) for rule in cfg.monitor.alerts}
    moments: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        key = (row["at"], row["model_version"], row["window_name"])
        if key not in moments or (row["metric"], row["window_name"]) in rules:
            moments[key] = row
    return sorted(moments.values(), key=lambda r: r["at"])


class Timeline:
    """Event index of a moment: how many predictions had been sent by then. After the last
    one, the count goes on at the sending rate, as if the stream had continued."""

    def __init__(self, times: Sequence[datetime], rate: float) -> None:
        self.times = list(times)  # exact to the microsecond, as PostgreSQL stores them
        self.rate = rate

    def sent_by(self, at: datetime) -> int:
        if self.times and at > self.times[-1]:
            return len(self.times) + int((at - self.times[-1]).total_seconds() * self.rate)
        return bisect_right(self.times, at)

    def first_at(self, at: datetime) -> int:
        """Index of the first event sent at or after ``at``."""
        return bisect_left(self.times, at)


def evaluate(
    stream: DriftStream,
    champion: Champion,
    cfg: ModelConfig,
    model: str,
    sent: Sent,
    back: esql.ReadBack,
    counts: Mapping[str, int],
    *,
    rate: float,
    delay: float,
    schedule_every: int = SCHEDULE_EVERY,
    post_window: int = POST_WINDOW,
    report: Report | None = None,
) -> ScenarioResult:
    """Everything the tables show, from what was sent and what PostgreSQL holds."""
    n, task, metric = len(stream), stream.task, cfg.retrain_metric
    timeline = Timeline(sent.times, rate)
    logged = np.full(n, np.nan)
    labels = np.full(n, np.nan)
    for e in back.examples:
        if 0 <= e.index < n:
            logged[e.index] = e.prediction
            if e.label is not None:
                labels[e.index] = e.label
    has_label = ~np.isnan(labels)
    mismatches = int(np.sum(np.abs(labels[has_label] - stream.labels[has_label]) > 1e-9))

    signals = [
        Signal(
            "alert",
            a["at"],
            timeline.sent_by(a["at"]),
            f"{a['metric']} {a['value']:.4g} on {a['window_name']} ({a['model_version']})",
            a["model_version"],
        )
        for a in _alerts(back.alerts, cfg)
    ]
    signals += [
        Signal(
            "episode",
            e["at"],
            timeline.sent_by(e["at"]),
            f"{e['feature']} ({e['method']}, {e['model_version']})",
            e["model_version"],
        )
        for e in back.episodes
    ]
    signals += [
        Signal(
            "retrain",
            r.started_at,
            timeline.sent_by(r.started_at),
            f"run {r.id} ({r.trigger}) -> {r.status}"
            + (f" {r.candidate_version}" if r.candidate_version else "")
            + (f", stopped at {r.first_failed_gate}" if r.first_failed_gate else "")
            + (f", error {r.error[:60]}" if r.error else ""),
        )
        for r in back.runs
    ]
    signals.sort(key=lambda s: (s.at, s.kind))

    promotions: list[Promotion] = []
    for h in back.champion_history:
        if h["rollback"] or h["version"] == champion.version:
            continue  # the initial champion adopted as an external version is no promotion
        index = timeline.sent_by(h["at"])
        served = next(
            (k for k in range(index, n) if sent.versions[k] == h["version"]),
            None,
        )
        promotions.append(Promotion(h["version"], h["at"], index, served))

    versions = Counter(sent.versions)
    delivery = Delivery(
        sent=len(sent.times),
        outcomes_sent=sent.outcomes,
        stored=counts.get("stored", len(back.examples)),
        labeled=counts.get("labeled", int(has_label.sum())),
        labeled_rows=back.labeled_rows,
        pending=counts.get("pending", 0),
        outcomes_stored=back.outcomes_stored,
        dead_letters=back.dead_letters,
        label_mismatches=mismatches,
        send_seconds=sent.seconds,
    )

    if report is not None:
        report("never retraining", 0, 3)
    never = champion.predict(stream.rows)
    if report is not None:
        report(f"retraining every {schedule_every:,}", 1, 3)
    label_lag = math.ceil(delay * rate)
    schedule = fixed_schedule(stream, champion, cfg, schedule_every, label_lag)
    truth = stream.labels
    result = ScenarioResult(
        scenario=stream.kind,
        task=task,
        model=model,
        events=n,
        rate=rate,
        delay=delay,
        metric=metric,
        onset=stream.onset,
        return_at=stream.return_at,
        settled_at=stream.settled_at,
        signals=signals,
        promotions=promotions,
        runs=back.runs,
        delivery=delivery,
        served_by=dict(versions),
        whole_loop=_quality(metric, task, labels, logged),
        whole_never=_quality(metric, task, truth, never),
        whole_schedule=_quality(metric, task, truth, schedule),
        schedule_every=schedule_every,
        initial_version=champion.version,
    )
    promoted = result.promotion
    if promoted is not None:
        if report is not None:
            report("oracle", 2, 3)
        _post_promotion(
            result,
            stream,
            cfg,
            promoted,
            back.runs,
            timeline,
            logged,
            labels,
            label_lag,
            post_window,
        )
    if report is not None:
        report("done", 3, 3)
    return result


def _post_promotion(
    result: ScenarioResult,
    stream: DriftStream,
    cfg: ModelConfig,
    promoted: Promotion,
    runs: Sequence[esql.RunRow],
    timeline: Timeline,
    logged: NDArray[np.float64],
    labels: NDArray[np.float64],
    label_lag: int,
    post_window: int,
) -> None:
    """The loop's quality in the ``post_window`` events after its first promotion after the
    onset, and an oracle's on the same events: the same learner trained on the post-change
    rows the promoted model had (from the change it followed, known exactly)."""
    n = len(stream)
    run = next((r for r in runs if r.candidate_version == promoted.version), None)
    span = _span(run.dataset) if run is not None else None
    if span is not None:
        first, last = timeline.first_at(span[0]), min(n - 1, timeline.sent_by(span[1]) - 1)
    else:  # what had matured when the run started (or the promotion, without a run)
        moment = run.started_at if run is not None else promoted.at
        first, last = 0, min(n - 1, timeline.sent_by(moment) - label_lag - 1)
        result.notes.append("the promoted run's training span was not found; estimated")
    result.loop_rows = (first, last)
    start = promoted.first_served if promoted.first_served is not None else promoted.index
    end = min(n, start + post_window)
    if end <= start:
        result.notes.append("the promotion came too late to leave events to evaluate it on")
        return
    result.post_window = (start, end)
    result.post_loop = _quality(result.metric, stream.task, labels[start:end], logged[start:end])
    changes = [c for c in stream.change_points if c <= last - ORACLE_MIN_ROWS + 1]
    if not changes:
        result.notes.append("the promoted model saw too few post-change rows for an oracle")
        return
    lo = max(changes[-1], first)
    result.oracle_rows = (lo, last)
    oracle = train_like_the_loop(cfg, stream.rows[lo : last + 1], stream.labels[lo : last + 1])
    result.post_oracle = _quality(
        result.metric, stream.task, stream.labels[start:end], oracle.predict(stream.rows[start:end])
    )


# One scenario, end to end ----------------------------------------------------------------------


async def run_scenario_end_to_end(
    settings: Settings,
    scenario: Kind,
    task: Task,
    events: int,
    rate: float,
    delay: float,
    *,
    seed: int = SEED,
    onset_share: float = 0.5,
    return_share: float | None = None,
    schedule_every: int = SCHEDULE_EVERY,
    post_window: int = POST_WINDOW,
    log_dir: Path | None = None,
    report: Report | None = None,
) -> ScenarioResult:
    """Run one scenario through a fresh worker on ``settings``' broker and database (both
    addresses resolved, migrations applied, topics created) and evaluate it.

    ``settings.models`` must hold the scenario's model (see :func:`model_name`)."""
    model = model_name(task, scenario)
    cfg = settings.models.get(model)
    if cfg is None:
        raise ValueError(f"no model {model!r} configured; see {CONFIG.relative_to(REPO)}")
    if cfg.task != task:
        raise ValueError(f"model {model!r} is configured for {cfg.task}, not {task}")
    stream = make_stream(
        scenario, task, events, onset_share=onset_share, return_share=return_share, seed=seed
    )
    champion = stream.fit_champion()
    run_id = f"{model}-{uuid.uuid4().hex[:8]}"
    log_path = (log_dir or settings.data_dir) / f"efficacy-{run_id}.log"
    started = utc_now()
    worker = WorkerProcess(settings, log_path)
    try:
        if report is not None:
            report("starting the worker", 0, events)
        await worker.wait_consuming(timeout=120)
        await adopt_champion(settings, model, champion)
        client = ServingClient(settings, model)
        await client.start()
        try:
            sent = await produce(
                settings, stream, model, run_id, rate, delay, champion, client, report
            )
        finally:
            await client.stop()
        horizon = cfg.horizon_seconds + delay + 60.0
        counts = await settle(settings, model, run_id, events, worker, horizon, report)
    finally:
        worker.stop()
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            back = await esql.read_back(conn, model, run_id, started)
    finally:
        await pool.close()
    result = evaluate(
        stream,
        champion,
        cfg,
        model,
        sent,
        back,
        counts,
        rate=rate,
        delay=delay,
        schedule_every=schedule_every,
        post_window=post_window,
        report=report,
    )
    result.log_path = log_path
    return result


# Reporting -------------------------------------------------------------------------------------

LOOP_HEADER = [
    "model",
    "detected after (events)",
    "false alarms (alerts / episodes / retrains)",
    "retrains (promoted)",
    "promoted after (events)",
    "sent / stored / labeled / pending",
    "dead letters",
    "targets met",
]
QUALITY_HEADER = [
    "model",
    "metric",
    "after promotion: loop",
    "oracle",
    "loop / oracle",
    "whole stream: loop",
    "never retrained",
    "fixed schedule",
]


def _events(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _loop_row(r: ScenarioResult) -> list[str]:
    fa = r.before_onset
    targets = r.targets()
    met = sum(t.passed for t in targets)
    detected = _events(r.detection_delay) if r.onset is not None else "n/a"
    if r.return_at is not None:
        detected += f" (return: {_events(r.redetection_delay)})"
    promoted = _events(r.promotion_delay) if r.onset is not None else "n/a"
    return [
        r.model,
        detected,
        f"{fa['alert']} / {fa['episode']} / {fa['retrain']}",
        f"{len(r.runs)} ({len(r.promotions)})",
        promoted,
        r.delivery.text(),
        str(r.delivery.dead_letters),
        f"{met}/{len(targets)}",
    ]


def _quality_row(r: ScenarioResult) -> list[str]:
    ratio = r.oracle_ratio
    name = r.metric + (" (accuracy)" if r.task == "binary" else "")
    return [
        r.model,
        name,
        r.post_loop.text() if r.post_loop else "-",
        r.post_oracle.text() if r.post_oracle else "-",
        "-" if ratio is None else f"{ratio:.3f}x",
        r.whole_loop.text(),
        r.whole_never.text(),
        r.whole_schedule.text(),
    ]


def rich_tables(results: Sequence[ScenarioResult], errors: Mapping[str, str]) -> list[Table]:
    loop = Table(
        title="Drift recovery, end to end: detection, retraining, delivery",
        title_justify="left",
    )
    for col in LOOP_HEADER:
        loop.add_column(col, overflow="fold")
    for r in results:
        row = _loop_row(r)
        ok = all(t.passed for t in r.targets())
        row[-1] = f"[green]{row[-1]}" if ok else f"[red]{row[-1]}"
        loop.add_row(*row)
    for model, error in errors.items():
        loop.add_row(model, f"[red]did not run: {error[:70]}", *([""] * (len(LOOP_HEADER) - 2)))
    quality = Table(
        title="Drift recovery: quality (lower is better for MAE and log-loss)",
        title_justify="left",
    )
    for col in QUALITY_HEADER:
        quality.add_column(col, overflow="fold")
    for r in results:
        quality.add_row(*_quality_row(r))
    return [loop, quality]


def _details(r: ScenarioResult) -> list[str]:
    by_count = sorted(r.served_by.items(), key=lambda kv: -kv[1])
    lines = [
        f"**{r.model}**: {r.events:,} events at {r.rate:g}/s (sent in "
        f"{r.delivery.send_seconds:.0f} s), outcome delay {r.delay:g} s; onset "
        f"{_events(r.onset)}"
        + (f", settled {r.settled_at:,}" if r.settled_at is not None else "")
        + (f", return {r.return_at:,}" if r.return_at is not None else "")
        + "; scored by "
        + ", ".join(f"{k} ({v:,})" for k, v in by_count)
    ]
    for kind in ("alert", "episode"):
        mine = [s for s in r.signals if s.kind == kind]
        if mine:
            lines.append(
                f"  - {len(mine)} {kind}(s); first at event {mine[0].index:,}: {mine[0].detail}"
            )
    for s in [s for s in r.signals if s.kind == "retrain"][:8]:
        lines.append(f"  - event {s.index:,}: {s.detail}")
    for p in r.promotions[:4]:
        served = "" if p.first_served is None else f", serving from event {p.first_served:,}"
        lines.append(f"  - event {p.index:,}: {p.version} promoted{served}")
    if r.oracle_rows is not None and r.loop_rows is not None and r.post_window is not None:
        lines.append(
            f"  - promoted model trained on events {r.loop_rows[0]:,}-{r.loop_rows[1]:,}; "
            f"oracle on {r.oracle_rows[0]:,}-{r.oracle_rows[1]:,} "
            f"({r.oracle_rows[1] - r.oracle_rows[0] + 1:,} post-change rows); both evaluated "
            f"on events {r.post_window[0]:,}-{r.post_window[1] - 1:,}"
        )
    for note in r.notes:
        lines.append(f"  - {note}")
    for t in r.targets():
        if not t.passed:
            lines.append(f"  - target NOT met: {t.name} ({t.detail})")
    return lines


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(
    results: Sequence[ScenarioResult],
    errors: Mapping[str, str],
    command: str,
    started: datetime,
    seconds: float,
    *,
    hogs: int = 0,
) -> str:
    loop_rows = [_loop_row(r) for r in results]
    loop_rows += [
        [model, f"did not run: {error[:100]}", *([""] * (len(LOOP_HEADER) - 2))]
        for model, error in errors.items()
    ]
    verdicts: list[str] = []
    for r in results:
        for t in r.targets():
            mark = "met" if t.passed else "**NOT met**"
            verdicts.append(f"- {r.model}: {t.name}: {mark} ({t.detail})")
    for model, error in errors.items():
        verdicts.append(f"- {model}: **did not run**: {error}")
    n_failed = sum(not t.passed for r in results for t in r.targets()) + len(errors)
    details = [line for r in results for line in _details(r)]
    return "\n".join(
        [
            LOADED_SECTION if hogs else SECTION,
            "",
            f"Made by {command} from the repository root, on {started:%Y-%m-%d %H:%M} UTC, in "
            f"{seconds:.0f} s. Python {platform.python_version()}, nproc = {os.cpu_count()} "
            "(shared and noisy: event counts include the worker's lag)."
            + (
                f" **Load:** {hogs} busy-loop process(es) ran beside it throughout, each "
                "taking a core if it can."
                if hogs
                else ""
            ),
            "",
            "Each scenario runs through a fresh `outcomeloop worker` process on the real broker "
            "and PostgreSQL with `benchmarks/efficacy.toml`. Predictions are scored at send "
            "time by the serving client once a retrained champion exists, else by the "
            "scenario's initial champion (LightGBM on 3,000 rows before the change), and "
            "every outcome follows its prediction by the outcome delay. Data: "
            "`workers/synth/drift_streams.py` (River's Friedman drift generators).",
            "",
            "- Event counts are predictions sent between the change and the moment the signal "
            "was written, label delay and worker lag included (after the last prediction, "
            "counted on at the sending rate). False alarms: alerts, drift "
            "episodes and retrains before the onset (on `stationary`, all of them).",
            "- Quality: MAE (regression) or log-loss with accuracy (binary) of the logged "
            "predictions against their labels. After promotion: the "
            f"{POST_WINDOW:,} events from the first one the promoted version scored. Oracle: "
            "the project's trainer (same candidate kinds, metric and validation split) on the "
            "promoted model's post-change rows, knowing exactly where the change began, "
            "evaluated on the same events. Never retrained: the initial champion on every "
            "event. Fixed schedule: retrain every K events on the last K labeled rows.",
            "",
            _md_table(LOOP_HEADER, loop_rows),
            "",
            _md_table(QUALITY_HEADER, [_quality_row(r) for r in results]),
            "",
            f"**Targets: {n_failed} not met.**" if n_failed else "**Targets: all met.**",
            "",
            *verdicts,
            "",
            "Details:",
            "",
            *[f"- {line}" if not line.startswith("  ") else line for line in details],
        ]
    )


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section under ``heading`` of ``path`` (up to the next level-2 heading),
    or add it; the other sections stay as they are."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next(
            (k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines)
        )
        kept_after = lines[end:]
        new = "\n".join([*lines[:start], *section.rstrip("\n").splitlines()])
        new += "\n" + ("\n" + "\n".join(kept_after) + "\n" if kept_after else "")
    path.write_text(new)


def command_line(argv: Sequence[str]) -> str:
    module = " ".join(["python -m benchmarks.efficacy", *argv])
    if os.environ.get("MAKELEVEL"):
        return f"`make efficacy` (runs `.venv/bin/{module}`)"
    return f"`{module}`"


# Main ------------------------------------------------------------------------------------------


def _names(value: str, valid: Sequence[str], what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in names if v not in valid]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; valid: {', '.join(valid)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.efficacy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=30_000, help="predictions per scenario")
    parser.add_argument("--rate", type=float, default=300.0, help="predictions per second")
    parser.add_argument("--outcome-delay", type=float, default=1.0, help="seconds")
    parser.add_argument(
        "--scenarios",
        type=lambda v: _names(v, KINDS, "scenarios"),
        default=list(KINDS),
        help=f"comma-separated, of {','.join(KINDS)}",
    )
    parser.add_argument(
        "--tasks",
        type=lambda v: _names(v, TASKS, "tasks"),
        default=list(TASKS),
        help="comma-separated, of regression,binary",
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="the models' config file")
    parser.add_argument("--schedule-every", type=int, default=SCHEDULE_EVERY, help="K events")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--cpu-hog",
        type=int,
        default=0,
        help="busy-loop processes to run beside it, to see the loop on a loaded machine "
        "(written to its own section)",
    )
    parser.add_argument("--write", type=Path, default=None, help="e.g. BENCHMARKS.md")
    return parser


@dataclass
class _Bar:
    progress: Progress
    task_id: Any
    label: str  # the model or fault the bar follows

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.progress.update(
            self.task_id, description=f"{self.label}: {stage}", completed=done, total=total
        )


def _settings(config: Path) -> Settings:
    os.environ[CONFIG_FILE_ENV] = str(config.resolve())
    settings = Settings()
    if settings.kafka_bootstrap is None and settings.database_url is None:
        # A broker and database of their own, fresh each run: the registry, alerts and runs
        # read back are this run's alone (a running `infra up` is left untouched).
        run_dir = settings.data_dir / "efficacy"
        shutil.rmtree(run_dir, ignore_errors=True)
        settings = settings.model_copy(update={"data_dir": run_dir})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    started, t0 = datetime.now(UTC), time.perf_counter()
    settings = _settings(args.config)
    results: list[ScenarioResult] = []
    errors: dict[str, str] = {}
    pairs = [(cast(Task, t), cast(Kind, s)) for t in args.tasks for s in args.scenarios]
    with ensure_infra(settings) as resolved, harness.cpu_hog(args.cpu_hog):
        asyncio.run(prepare(resolved))
        with harness.progress(console) as progress:
            for task, scenario in pairs:
                model = model_name(task, scenario)
                bar = _Bar(progress, progress.add_task(model, total=args.events), model)
                try:
                    result = asyncio.run(
                        run_scenario_end_to_end(
                            resolved,
                            scenario,
                            task,
                            args.events,
                            args.rate,
                            args.outcome_delay,
                            seed=args.seed,
                            schedule_every=args.schedule_every,
                            report=bar,
                        )
                    )
                except Exception as exc:  # one scenario's failure is reported, not fatal
                    errors[model] = f"{type(exc).__name__}: {exc}"
                    progress.console.print(f"[red]{model} failed: {errors[model]}")
                    continue
                results.append(result)
                failed = [t for t in result.targets() if not t.passed]
                verdict = "[green]all targets met" if not failed else f"[red]{len(failed)} failed"
                progress.console.print(f"{model}: {verdict} (worker log {result.log_path})")
    seconds = time.perf_counter() - t0
    for table in rich_tables(results, errors):
        console.print(table)
    for r in results:
        for line in _details(r):
            console.print(line, markup=False, highlight=False)
    failed_targets = [(r.model, t) for r in results for t in r.targets() if not t.passed]
    if failed_targets or errors:
        console.print("[red bold]targets not met:")
        for model, t in failed_targets:
            console.print(f"[red]  {model}: {t.name} ({t.detail})")
        for model, error in errors.items():
            console.print(f"[red]  {model}: did not run ({error})")
    else:
        console.print("[green bold]every target met")
    if args.write is not None:
        path = args.write if args.write.is_absolute() else REPO / args.write
        heading = LOADED_SECTION if args.cpu_hog else SECTION
        section = markdown(
            results, errors, command_line(args_list), started, seconds, hogs=args.cpu_hog
        )
        write_section(path, section, heading)
        console.print(f"wrote the '{heading[3:]}' section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
