"""What the drift-recovery benchmark reads back from PostgreSQL after a scenario.

Every query is scoped to one model and to rows written since the scenario began (and the
run's prediction-id prefix where the table has one), so scenarios never see each other's
rows even when they share a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workers.db.pool import Conn

# Every prediction of the run with its label (NULL while unlabeled), in send order.
RUN_EXAMPLES = """
SELECT p.prediction_id, p.model_version, p.prediction, p.predicted_at, p.matured_at,
       p.resolution, l.label
FROM prediction_status p
LEFT JOIN labeled_examples l ON l.prediction_id = p.prediction_id
WHERE p.model = $1 AND p.prediction_id LIKE $2 || '-%'
"""

RUN_PROGRESS = """
SELECT count(*) AS stored,
       count(*) FILTER (WHERE resolution IS NULL) AS pending,
       count(*) FILTER (WHERE resolution IN ('outcome', 'feedback', 'no_outcome')) AS labeled
FROM prediction_status WHERE model = $1 AND prediction_id LIKE $2 || '-%'
"""

RUN_OUTCOMES = "SELECT count(*) FROM outcomes WHERE prediction_id LIKE $1 || '-%'"

LABELED_ROWS = (
    "SELECT count(*) FROM labeled_examples WHERE model = $1 AND prediction_id LIKE $2 || '-%'"
)

DEAD_LETTERS = "SELECT count(*) FROM dead_letters WHERE dead_lettered_at >= $1"

ALERTS = """
SELECT taken_at AS at, model_version, window_name, metric, value, n
FROM quality_snapshots
WHERE model = $1 AND reason = 'alert' AND taken_at >= $2
ORDER BY taken_at, id
"""

EPISODES = """
SELECT computed_at AS at, model_version, feature, method, statistic, threshold
FROM drift_stats
WHERE model = $1 AND episode_start AND computed_at >= $2
ORDER BY computed_at, id
"""

RUNS = """
SELECT id, trigger, status, candidate_version, dataset, gate_report, error, started_at,
       finished_at
FROM retrain_runs
WHERE model = $1 AND started_at >= $2
ORDER BY id
"""

RUNNING = "SELECT count(*) FROM retrain_runs WHERE model = $1 AND status = 'running'"

CHAMPION_HISTORY = """
SELECT version, previous_version, set_by, reason, rollback, set_at AS at
FROM alias_history
WHERE model = $1 AND alias = 'champion' AND set_at >= $2
ORDER BY id
"""


@dataclass(frozen=True)
class Example:
    index: int
    version: str
    prediction: float
    predicted_at: datetime
    matured_at: datetime | None
    resolution: str | None
    label: float | None


@dataclass(frozen=True)
class RunRow:
    id: int
    trigger: str
    status: str
    candidate_version: str | None
    dataset: dict[str, Any]
    first_failed_gate: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ReadBack:
    examples: list[Example]  # by index; only those stored
    outcomes_stored: int
    labeled_rows: int
    dead_letters: int
    alerts: list[dict[str, Any]]
    episodes: list[dict[str, Any]]
    runs: list[RunRow]
    champion_history: list[dict[str, Any]]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _first_failure(report: Any) -> str | None:
    for gate in _json(report) or []:
        if isinstance(gate, dict) and not gate.get("passed", True):
            return str(gate.get("name"))
    return None


async def progress(conn: Conn, model: str, run_id: str) -> dict[str, int]:
    row = await conn.fetchrow(RUN_PROGRESS, model, run_id)
    assert row is not None
    return {k: int(v) for k, v in dict(row).items()}


async def running_retrains(conn: Conn, model: str) -> int:
    return int(await conn.fetchval(RUNNING, model))


async def read_back(conn: Conn, model: str, run_id: str, since: datetime) -> ReadBack:
    prefix = len(run_id) + 1
    examples = [
        Example(
            int(r["prediction_id"][prefix:]),
            r["model_version"],
            float(r["prediction"]),
            r["predicted_at"],
            r["matured_at"],
            r["resolution"],
            None if r["label"] is None else float(r["label"]),
        )
        for r in await conn.fetch(RUN_EXAMPLES, model, run_id)
    ]
    examples.sort(key=lambda e: e.index)
    runs = [
        RunRow(
            r["id"],
            r["trigger"],
            r["status"],
            r["candidate_version"],
            _json(r["dataset"]) or {},
            _first_failure(r["gate_report"]),
            r["error"],
            r["started_at"],
            r["finished_at"],
        )
        for r in await conn.fetch(RUNS, model, since)
    ]
    return ReadBack(
        examples=examples,
        outcomes_stored=int(await conn.fetchval(RUN_OUTCOMES, run_id)),
        labeled_rows=int(await conn.fetchval(LABELED_ROWS, model, run_id)),
        dead_letters=int(await conn.fetchval(DEAD_LETTERS, since)),
        alerts=[dict(r) for r in await conn.fetch(ALERTS, model, since)],
        episodes=[dict(r) for r in await conn.fetch(EPISODES, model, since)],
        runs=runs,
        champion_history=[dict(r) for r in await conn.fetch(CHAMPION_HISTORY, model, since)],
    )
