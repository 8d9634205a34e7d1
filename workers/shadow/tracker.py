"""Progressive validation of challengers beside the champion. Pure.

Every sampled matured example is first predicted by each challenger, scored against its
label together with the champion's logged prediction, and only then learned from: the
challengers' scores are honest, and both sides are scored on exactly the same examples.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from river import metrics, utils

from workers.monitor.episodes import EpisodeTracker
from workers.retrain.scoring import higher_is_better, improvement
from workers.settings import ModelConfig
from workers.shadow import challengers

_RIVER_METRICS = {
    "mae": metrics.MAE,
    "rmse": metrics.RMSE,
    "log_loss": metrics.LogLoss,
    "accuracy": metrics.Accuracy,
    "f1": metrics.F1,
    "precision": metrics.Precision,
    "recall": metrics.Recall,
    "roc_auc": metrics.ROCAUC,
}


def sampled(prediction_id: str, share: float) -> bool:
    if share >= 1.0:
        return True
    h = int.from_bytes(hashlib.sha256(prediction_id.encode()).digest()[:8], "big") / 2**64
    return h < share


@dataclass
class Challenger:
    key: str
    model: Any
    metric: Any  # rolling River metric of the challenger
    champion: Any  # the champion's rolling metric on the very same examples
    learned: int = 0
    seq: int = 0

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "champion": self.champion,
            "learned": self.learned,
            "seq": self.seq,
        }


@dataclass(frozen=True)
class Ahead:
    challenger: str
    metric: str
    challenger_value: float
    champion_value: float
    improvement: float
    examples: int


@dataclass
class ShadowTracker:
    """The challengers of one model."""

    model: str
    cfg: ModelConfig
    challengers: dict[str, Challenger] = field(default_factory=dict)
    skipped: int = 0  # examples not learned from: sampled out, or over the rate budget
    clock: Callable[[], float] = time.monotonic
    cpu_clock: Callable[[], float] = time.thread_time
    _tokens: float = -1.0  # learning budget (token bucket); full at the first example
    _refilled_at: float = 0.0
    _cpu_tokens: float = -1.0  # CPU seconds challengers may still spend learning
    _cost: float = 0.0  # CPU seconds one example took to learn (smoothed); 0 until known
    # Ingestion is behind (set by the monitor from the consumer lag): the CPU budget
    # shrinks to busy_cpu_share, so a backlog drains at the speed of ingestion alone.
    busy: bool = False
    _episodes: EpisodeTracker = field(default_factory=lambda: EpisodeTracker(clear_after=50))

    def __post_init__(self) -> None:
        for key in self.cfg.shadow.challengers:
            self.challengers[key] = self.fresh(key)

    @property
    def metric_name(self) -> str:
        return self.cfg.retrain_metric

    def _rolling(self) -> Any:
        return utils.Rolling(_RIVER_METRICS[self.metric_name], window_size=self.cfg.shadow.window)

    def fresh(self, key: str) -> Challenger:
        model = challengers.build(key, self.cfg.task, max_depth=self.cfg.shadow.max_tree_depth)
        return Challenger(key, model, self._rolling(), self._rolling())

    def restore(self, key: str, state: dict[str, Any]) -> None:
        self.challengers[key] = Challenger(
            key, state["model"], state["metric"], state["champion"], state["learned"], state["seq"]
        )

    def _update(self, metric: Any, label: float, pred: float) -> None:
        if self.metric_name in ("accuracy", "f1", "precision", "recall"):
            metric.update(label >= 0.5, pred >= 0.5)
        elif self.cfg.task == "binary":
            metric.update(label >= 0.5, min(max(pred, 1e-15), 1 - 1e-15))
        else:
            metric.update(label, pred)

    def observe(
        self,
        seq: int,
        prediction_id: str,
        features: dict[str, Any],
        champion_prediction: float,
        label: float,
    ) -> None:
        if not self.wants(prediction_id) or not self._budget():
            self.skipped += 1
            return
        task = self.cfg.task
        cpu = self.cpu_clock()
        for ch in self.challengers.values():
            if seq <= ch.seq:
                continue  # learned before its checkpoint
            x = challengers.encode(features, ch.key)
            self._update(ch.metric, label, challengers.predict(ch.model, x, task))
            self._update(ch.champion, label, champion_prediction)
            challengers.learn(ch.model, x, label, task)
            ch.learned += 1
            ch.seq = seq
        spent = self.cpu_clock() - cpu
        self._cpu_tokens -= spent
        self._cost = spent if self._cost == 0 else 0.9 * self._cost + 0.1 * spent

    def skip(self) -> None:
        """An example the challengers will not see (its features were not read)."""
        self.skipped += 1

    def wants(self, prediction_id: str) -> bool:
        return sampled(prediction_id, self.cfg.shadow.sample_share)

    def allowance(self) -> int:
        """How many examples to read features for: twice what the budget would take now
        (it refills while they are learned, and reading a few unused features costs less
        than skipping examples there was room for). observe() still takes each one from
        the budget; under load this is a few dozen of thousands, the rest are skipped."""
        self._refill()
        if not self._has_budget():
            return 0
        n = int(self._tokens)
        if self._cost > 0:  # until what one example costs is known, the rate alone
            n = min(n, math.ceil(self._cpu_tokens / self._cost))
        return 2 * n

    def _refill(self) -> None:
        """max_learn_per_second examples and max_cpu_share CPU seconds a second
        (busy_cpu_share while ingestion is behind), each with two seconds' worth of burst."""
        shadow = self.cfg.shadow
        rate = shadow.max_learn_per_second
        share = shadow.busy_cpu_share if self.busy else shadow.max_cpu_share
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._cpu_tokens = 2 * rate, 2 * share
        else:
            elapsed = now - self._refilled_at
            self._tokens = min(2 * rate, self._tokens + rate * elapsed)
            self._cpu_tokens = min(2 * share, self._cpu_tokens + share * elapsed)
        self._refilled_at = now

    def _budget(self) -> bool:
        """Take one example from the learning budget."""
        self._refill()
        if not self._has_budget():
            return False
        self._tokens -= 1
        return True

    def _has_budget(self) -> bool:
        return self._tokens >= 1 and self._cpu_tokens > 0

    def standings(self) -> dict[str, tuple[float, float, int]]:
        """challenger -> (its metric, the champion's on the same examples, examples)."""
        return {
            k: (float(c.metric.get()), float(c.champion.get()), c.learned)
            for k, c in self.challengers.items()
            if c.learned
        }

    def ahead(self) -> list[Ahead]:
        """Challengers newly ahead of the champion by the margin: one event per episode."""
        out = []
        shadow = self.cfg.shadow
        for key, (mine, champ, n) in self.standings().items():
            gain = improvement(self.metric_name, mine, champ)
            is_ahead = n >= shadow.min_examples and gain >= shadow.margin
            if self._episodes.observe((key,), is_ahead):
                out.append(Ahead(key, self.metric_name, mine, champ, gain, n))
        return out

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric_name)
