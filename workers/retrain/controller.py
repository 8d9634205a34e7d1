"""The retrain controller of one model: when a degradation may train, on what evidence,
and what happens after a run. Pure: state in, decision out; PostgreSQL holds the state.

    healthy ──alert/drift──► waiting_for_evidence ──enough post-change rows──► training
       ▲                      │ (deferred while cooling down or paused)          │
       │                      ▼                                                  ▼
       └──── promoted ◄── awaiting_approval ◄── passed gates        gated / failed
                                                                          │
                           backoff ──(time, more rows, still degraded)──► training …
                              └── max_attempts reached ──► exhausted (one alert)

Training data starts where the change began (``change_at``, in prediction time), so a
retrain learns the new concept, and it waits until enough examples predicted after that
point have matured, so a backlog or a fast alert never trains on an empty or old window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from schemas.registry import LoopState
from workers.retrain.gates import GateResult
from workers.settings import RetrainConfig

# Too few errors to place a change point: the degradation starts at the oldest of them.
MIN_ERRORS_FOR_CHANGE_POINT = 30
# How far past the least-squares split the change point is moved, in units of the split's
# own uncertainty (variance / shift^2): the split falls before a real change by more than
# 20 units about 1% of the time (simulated, Gaussian shifts of 0.3-2 sigma).
CHANGE_POINT_MARGIN = 20.0


@dataclass(frozen=True)
class Loop:
    """The controller's state of one model, as stored in model_controls."""

    state: LoopState = "healthy"
    version: str | None = None
    trigger: str | None = None
    detail: dict[str, Any] | None = None
    change_at: datetime | None = None
    attempts: int = 0
    last_attempt_rows: int = 0
    next_attempt_at: datetime | None = None
    reason: str = ""
    # After a promotion trained on few post-change rows: retrain again (gated) once this
    # many examples predicted since change_at have matured. None: no refresh due.
    refresh_rows: int | None = None

    @property
    def open(self) -> bool:
        """A degradation is being dealt with."""
        return self.state != "healthy"

    def handles(self, version: str | None) -> bool:
        """Whether a degradation of ``version`` is already being dealt with. A refresh is
        not one: it retrains a healthy champion, so an alert during it opens the loop
        (else the refresh ends, the loop closes, and the alert is never acted on)."""
        return self.open and self.trigger != "refresh" and self.version == version


@dataclass(frozen=True)
class Facts:
    """What the controller sees at one step."""

    now: datetime
    paused: bool
    last_auto_retrain_at: datetime | None
    running: bool  # a run of this model is in progress
    degraded: bool  # the version being replaced still shows a quality or error episode
    post_change_rows: int  # matured examples predicted at or after change_at


@dataclass(frozen=True)
class Step:
    loop: Loop
    start_run: bool = False
    exhausted: bool = False


def needed_rows(loop: Loop, cfg: RetrainConfig) -> int:
    """Post-change examples the next run waits for: more with every retry."""
    first = cfg.min_post_change
    if loop.attempts == 0:
        return first
    grown = max(first, loop.last_attempt_rows) * cfg.triggers.retry_growth
    return int(np.ceil(grown))


def open_degradation(
    loop: Loop,
    *,
    trigger: str,
    detail: dict[str, Any],
    version: str | None,
    change_at: datetime | None,
) -> Loop | None:
    """A quality alert or drift episode on `version`: the loop opens, or None when this one
    is already being dealt with (the same version's later alerts add nothing)."""
    if loop.handles(version):
        return None
    return Loop(
        state="waiting_for_evidence",
        version=version,
        trigger=trigger,
        detail=detail,
        change_at=change_at,
        reason=f"{trigger} on {version}",
    )


def promoted(
    loop: Loop, *, rows: int, cfg: RetrainConfig, reason: str, champion: str | None = None
) -> Loop:
    """The loop after a promotion of ``champion``: closed, with a refresh due once
    ``refresh_growth`` times the rows it learned from have matured after the change (up
    to ``max_rows``)."""
    growth = cfg.triggers.refresh_growth
    if loop.change_at is None or growth <= 0 or rows <= 0 or rows >= cfg.max_rows:
        return Loop(reason=reason)
    return Loop(
        version=champion,
        change_at=loop.change_at,
        last_attempt_rows=rows,
        refresh_rows=min(int(np.ceil(rows * growth)), cfg.max_rows),
        reason=reason,
    )


def recall_rows(cfg: RetrainConfig) -> int:
    """Post-change rows a recall is judged on: never more than a retrain waits for, so it
    always comes first."""
    return min(cfg.recall.min_rows, cfg.min_post_change)


def next_recall_rows(
    loop: Loop, tried: tuple[str | None, datetime | None, int] | None, cfg: RetrainConfig
) -> int:
    """The champion's post-change rows the next recall of this degradation waits for: the
    first on `recall_rows`, each later one on twice as many as the last (``tried``: the
    degradation's version, change and rows of the last recall, if any)."""
    if tried is not None and tried[:2] == (loop.version, loop.change_at):
        return 2 * tried[2]
    return recall_rows(cfg)


def recall_due(loop: Loop, facts: Facts, cfg: RetrainConfig) -> bool:
    """Whether earlier champions may be tried on the post-change rows now: a degradation
    with a known start and version is waiting and still degraded, enough rows have
    matured, promotions are automatic (a recall replaces the champion at once) and
    nothing else is going on."""
    waiting = loop.state in ("waiting_for_evidence", "deferred", "backoff")
    return (
        cfg.recall.enabled
        and cfg.promotion == "auto"
        and waiting
        and facts.degraded
        and loop.version is not None
        and loop.change_at is not None
        and not facts.paused
        and not facts.running
        and facts.post_change_rows >= recall_rows(cfg)
    )


def advance(loop: Loop, facts: Facts, cfg: RetrainConfig) -> Step:
    """One step of the controller: wait, start a run, or give up."""
    if loop.state == "healthy":
        due = loop.refresh_rows is not None and facts.post_change_rows >= loop.refresh_rows
        # Never while the champion shows a problem: the data since change_at may hold a
        # new change, which its own degradation (and change point) must deal with.
        if not due or facts.paused or facts.running or facts.degraded:
            return Step(loop)
        return Step(
            replace(
                loop,
                state="training",
                trigger="refresh",
                reason=f"refresh on {facts.post_change_rows} rows after the change",
            ),
            start_run=True,
        )
    if loop.state in ("training", "awaiting_approval"):
        return Step(loop)
    if loop.state == "exhausted":
        if not facts.degraded:
            return Step(Loop(reason="quality recovered after the loop gave up"))
        return Step(loop)
    if not facts.degraded and (loop.state == "backoff" or loop.trigger == "quality_alert"):
        # Runs are for a model that is still bad. (A drift episode's first run goes ahead:
        # the inputs moved even if the errors have not shown it yet.)
        return Step(Loop(reason=f"recovered on its own after {loop.attempts} attempt(s)"))
    if facts.paused:
        return Step(_moved(loop, "deferred", "paused: waits for ResumeModel"))
    if facts.running:
        return Step(_moved(loop, loop.state, "a run of this model is in progress"))
    t = cfg.triggers
    # The cooldown spaces degradations; a retry of this one is paced by its backoff (else
    # a cooldown longer than the backoff would make backoff_seconds meaningless).
    if facts.last_auto_retrain_at is not None and loop.attempts == 0:
        ready_at = facts.last_auto_retrain_at + timedelta(seconds=t.cooldown_seconds)
        if facts.now < ready_at:
            return Step(_moved(loop, "deferred", f"cooling down until {ready_at.isoformat()}"))
    if loop.next_attempt_at is not None and facts.now < loop.next_attempt_at:
        return Step(
            _moved(loop, "backoff", f"backing off until {loop.next_attempt_at.isoformat()}")
        )
    need = needed_rows(loop, cfg)
    if loop.change_at is not None and facts.post_change_rows < need:
        return Step(
            _moved(
                loop,
                "waiting_for_evidence",
                f"{facts.post_change_rows} of {need} matured examples after the change",
            )
        )
    return Step(
        _moved(loop, "training", f"attempt {loop.attempts + 1} of {t.max_attempts}"),
        start_run=True,
    )


def after_run(
    loop: Loop,
    *,
    status: str,
    promoted: bool,
    rows: int,
    now: datetime,
    cfg: RetrainConfig,
    reason: str = "",
) -> Step:
    """A run this loop started has ended: promoted, waiting for approval, or a failure."""
    if promoted:
        return Step(Loop(reason=f"promoted: {reason}" if reason else "promoted"))
    if loop.trigger == "refresh":
        # More data did not beat the champion: it stays, and refreshing stops.
        return Step(Loop(reason=f"refresh not promoted: {reason}"))
    if status == "succeeded":
        return Step(_moved(loop, "awaiting_approval", "passed every gate; waits for approval"))
    return failed_attempt(loop, rows=rows, now=now, cfg=cfg, reason=reason or status)


def failed_attempt(
    loop: Loop, *, rows: int, now: datetime, cfg: RetrainConfig, reason: str
) -> Step:
    attempts = loop.attempts + 1
    t = cfg.triggers
    if attempts >= t.max_attempts:
        return Step(
            replace(
                loop,
                state="exhausted",
                attempts=attempts,
                last_attempt_rows=rows,
                next_attempt_at=None,
                reason=f"{attempts} attempt(s) failed; last: {reason}",
            ),
            exhausted=True,
        )
    wait = t.backoff_seconds * 2 ** (attempts - 1)
    return Step(
        replace(
            loop,
            state="backoff",
            attempts=attempts,
            last_attempt_rows=rows,
            next_attempt_at=now + timedelta(seconds=wait),
            reason=f"attempt {attempts} of {t.max_attempts}: {reason}",
        )
    )


def _moved(loop: Loop, state: LoopState, reason: str) -> Loop:
    return replace(loop, state=state, reason=reason)


def example_losses(task: str, predictions: Sequence[float], labels: Sequence[float]) -> np.ndarray:
    """Each example's own loss: absolute error, or log loss for a classifier (whose
    absolute errors barely move when its concept changes)."""
    p = np.asarray(predictions, dtype=float)
    y = np.asarray(labels, dtype=float)
    if task == "binary":
        p = np.clip(p, 1e-6, 1 - 1e-6)
        positive = y >= 0.5
        return np.asarray(-np.log(np.where(positive, p, 1 - p)))
    return np.asarray(np.abs(p - y))


def change_start(losses: ArrayLike, not_before: int | None = None) -> int:
    """Index where the degradation's training data starts: the change point, but never
    before ``not_before`` (the first example of the alert's own window, which is bad
    enough to have crossed the bound). A change point placed too early would train on the
    old concept; one a little late only waits for a few more rows."""
    n = len(np.asarray(losses))
    cut = change_point(losses)
    if not_before is not None:
        cut = max(cut, min(max(not_before, 0), n - 1))
    return cut


def change_point(errors: ArrayLike) -> int:
    """Index of the first example after the most likely single shift in mean error
    (least squares / CUSUM split, as in binary segmentation), moved later by the split's
    uncertainty so that it rarely falls before the change. 0 with too few errors.

    Late is the safe side: a point too early trains on the old concept, one too late only
    waits for a few more rows. So only the start is kept clear of outliers; at the end,
    where an alert finds the change (it may have only a few dozen examples after it),
    any split may win."""
    x = np.abs(np.asarray(errors, dtype=float))
    n = len(x)
    if n < MIN_ERRORS_FOR_CHANGE_POINT:
        return 0
    k = np.arange(1, n)
    left = np.cumsum(x)[:-1]
    left_mean = left / k
    right_mean = (x.sum() - left) / (n - k)
    # Between-segment sum of squares of a split after k examples; the best split wins.
    gain = k * (n - k) / n * (left_mean - right_mean) ** 2
    gain[: max(5, n // 50) - 1] = -1.0
    cut = int(np.argmax(gain)) + 1
    shift = float(right_mean[cut - 1] - left_mean[cut - 1])
    if shift <= 0:  # errors fell: no change to train on; the split as it is
        return cut
    variance = (np.var(x[:cut]) * cut + np.var(x[cut:]) * (n - cut)) / (n - 2)
    uncertainty = float(variance) / shift**2
    return min(n - 1, cut + math.ceil(CHANGE_POINT_MARGIN * uncertainty))


def champion_steady(loop: Loop, *, monitor_degraded: bool) -> GateResult:
    """A refresh's last gate: the champion it refreshes must not have degraded while it
    trained. If it did, a new change began inside the refresh's rows (all those since the
    old change): the candidate learned a mix, and the loop handles the new change."""
    if not (loop.state == "training" and loop.trigger == "refresh"):
        why = f"the loop opened while it trained ({loop.reason})"
    elif monitor_degraded:
        # The monitor knows before the loop does: its alert may still be on the way.
        why = "the monitor reports it degraded (or has not read its history yet)"
    else:
        return GateResult(
            "champion_steady", True, {}, "the champion stayed healthy while the refresh trained"
        )
    reason = f"the champion degraded while the refresh trained: {why}; its rows may "
    return GateResult("champion_steady", False, {}, reason + "straddle a new change")
