"""The dashboard in a real headless Chromium, against a real worker, broker and PostgreSQL:
the page loads, draws its charts, lists the candidate waiting for approval, and an
operator with the token approves it: the same signed command the CLI sends, and the
version becomes the champion in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from playwright.async_api import async_playwright

from schemas import OutcomeObserved, PredictionMade
from schemas.base import utc_now
from tests.conftest import REPO, SettingsFactory
from tests.integration.browser import ensure_chromium
from tests.integration.conftest import StartWorker
from tests.integration.fakes import CollectingPublisher, CollectingSink
from tests.integration.worker_process import wait_until
from workers.infra.net import free_port
from workers.ingest.decode import RawMessage
from workers.runtime import Services
from workers.settings import (
    AlertRule,
    DriftConfig,
    GatesConfig,
    ModelConfig,
    MonitorConfig,
    MonitoringConfig,
    RetrainConfig,
    Settings,
    TriggerConfig,
    WorkerConfig,
)
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

TOKEN = "test-operator-token-7f3a"
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()


def approval_model() -> ModelConfig:
    return ModelConfig(
        horizon_seconds=3600,
        features=("x", "channel"),
        monitor=MonitorConfig(
            count_windows=(100,),
            time_windows_seconds=(),
            # Drawn on the chart, never crossed: nothing but the test starts a retrain.
            alerts=(AlertRule(metric="mae", window="last_100", above=0.06),),
            error_detector="none",
            drift=DriftConfig(min_samples=50, reference_size=150, window_size=150),
        ),
        retrain=RetrainConfig(
            promotion="approval",
            candidates=("linear",),
            validation_share=0.25,
            triggers=TriggerConfig(on_quality_alert=False),
            gates=GatesConfig(min_samples=100, bootstrap_resamples=50),
        ),
    )


async def ingest(s: Services, settings: Settings, start: int, n: int) -> None:
    """Examples labelled 0.05 + 0.03·x; the serving model's logged score is 0.04 off."""
    rng = np.random.default_rng(start)
    now = utc_now()
    raws = []
    for i in range(start, start + n):
        x = float(rng.normal()) + (0.8 if i >= 200 else 0.0)  # drifts half way
        label = 0.05 + 0.03 * x + float(rng.normal(0, 0.01))
        p = PredictionMade(
            prediction_id=f"p{i}",
            model="ctr",
            model_version="v1",
            features={"x": x, "channel": ["a", "b"][i % 2]},
            prediction=label + float(rng.choice([-1, 1])) * 0.04,
            predicted_at=now - timedelta(minutes=30) + timedelta(milliseconds=i),
        )
        o = OutcomeObserved(
            prediction_id=p.prediction_id,
            outcome_kind="measured",
            value=label,
            observed_at=now - timedelta(minutes=10),
        )
        raws += [
            RawMessage(settings.topics.predictions, 0, 2 * i, None, p.to_bytes()),
            RawMessage(settings.topics.outcomes, 0, 2 * i + 1, None, o.to_bytes()),
        ]
    await s.ingest.handle(raws)


async def scenario(settings: Settings, pool: asyncpg.Pool) -> str:
    """Quality snapshots, drift checks, and a run that leaves a candidate; its version."""
    s = Services(settings, pool, CollectingSink(), CollectingPublisher())
    try:
        for chunk in range(4):
            await ingest(s, settings, chunk * 100, 100)
            await s.monitor.tick_quality()
            if chunk >= 2:
                await s.monitor.drift.tick()
            await asyncio.sleep(0.05)
        run_id = await s.retrain.run("ctr", "command", {})
    finally:
        await s.retrain.idle()
        s.executor.shutdown(wait=True)
    return f"r{run_id}"


async def http(url: str, *, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")
        except (OSError, ValueError):
            return 0, None

    return await asyncio.to_thread(call)


@pytest.mark.timeout(1500)  # the first run may install Chromium (see tests/integration/browser.py)
async def test_an_operator_approves_a_candidate_from_the_dashboard(
    chromium: Path,
    make_settings: SettingsFactory,
    pool: asyncpg.Pool,
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OL_DASHBOARD_TOKEN", TOKEN)  # the worker subprocess inherits it
    port = free_port()
    settings = make_settings(
        models={"ctr": approval_model()},
        monitoring=MonitoringConfig(snapshot_interval_seconds=0.001, drift_interval_seconds=2.0),
        worker=WorkerConfig(
            session_timeout_seconds=6.0,
            batch_within_seconds=0.1,
            sweep_interval_seconds=0.5,
            web_enabled=True,
            web_port=port,
        ),
    )
    assert settings.dashboard_token is not None
    version = await scenario(settings, pool)
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM model_versions WHERE model = 'ctr' AND version = $1", version
        )
    assert status == "candidate"

    await ensure_topics(settings)
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        code, _ = await http(f"{base}/health")
        return code == 200

    await wait_until(healthy, timeout=60, what="the worker's /health", worker=worker)

    # Without the token, or with a wrong one, nothing is sent.
    code, body = await http(f"{base}/dashboard/api/models/ctr/rollback", method="POST")
    assert code == 401 and "Bearer" in body["error"]
    code, body = await http(
        f"{base}/dashboard/api/models/ctr/rollback", method="POST", token="wrong"
    )
    assert code == 401
    code, body = await http(f"{base}/dashboard/api/overview")
    assert code == 200 and body["actions"] is True
    assert [p["version"] for p in body["pending"]] == [version]

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # Console errors include Content-Security-Policy violations.
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(f"{base}/dashboard")
            # Locators and selectors only: the page's CSP forbids eval (wait_for_function).
            await page.wait_for_selector(
                "body[data-loaded='true'], #message:not([hidden])",
                state="attached",
                timeout=20_000,
            )
            shown = await page.text_content("#message")
            assert await page.get_attribute("body", "data-loaded") == "true", (shown, errors)

            # A chart is drawn: a canvas with a size and painted pixels, fed with points.
            drawn = await page.evaluate(
                """() => {
                    const box = document.querySelector('.quality .chart');
                    const canvas = box && box.querySelector('canvas');
                    if (!canvas) return null;
                    const ctx = canvas.getContext('2d');
                    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                    let painted = 0;
                    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
                    return {w: canvas.width, h: canvas.height, points: +box.dataset.points,
                            painted};
                }"""
            )
            assert drawn is not None, "no quality chart canvas"
            assert drawn["w"] > 0 and drawn["h"] > 0 and drawn["points"] >= 2
            assert drawn["painted"] > 100
            assert await page.locator(".drift-feature canvas").count() >= 1

            # The candidate is listed with its card and gate report.
            card = page.locator(f".pending[data-version='{version}']")
            await card.wait_for()
            assert await card.locator("table.gates tr").count() > 1
            approve = card.locator("button.approve")
            assert await approve.is_visible()

            # The token is asked for once; then Approve sends the signed command.
            await page.fill("#token", TOKEN)
            await page.fill("#name", "test-operator")
            await page.click("#login button[type=submit]")
            await page.wait_for_selector("#session:not([hidden])")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            await approve.click()
            await page.locator("#message", has_text="done").wait_for(timeout=45_000)
            message = await page.text_content("#message")
            assert message is not None and f"{version} is the champion" in message
            await page.wait_for_selector(f".model[data-model='ctr'] .muted b >> text={version}")
            await page.screenshot(path=str(ARTIFACTS / "dashboard-approved.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()

    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, decided_by FROM model_versions WHERE model = 'ctr' AND version = $1",
            version,
        )
        champion = await conn.fetchval(
            "SELECT version FROM model_aliases WHERE model = 'ctr' AND alias = 'champion'"
        )
    assert row is not None and row["status"] == "champion"
    assert row["decided_by"] == "test-operator (dashboard)"
    assert champion == version
