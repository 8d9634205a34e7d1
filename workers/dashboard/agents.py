"""The dashboard's web pages on the worker's web server (roles loop and all).

``/dashboard`` is one static page; it reads the JSON endpoints under ``/dashboard/api/``
and, with the operator token, posts approve / reject / rollback, which are sent as the
same signed commands the CLI sends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View

from schemas.base import utc_now
from workers.dashboard import actions, views
from workers.runtime import Runtime

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor" / "uplot"
# Every file the page may load, by the name in its URL: nothing else is served.
FILES = {
    "dashboard.js": (STATIC / "dashboard.js", "application/javascript"),
    "dashboard.css": (STATIC / "dashboard.css", "text/css"),
    "uPlot.iife.min.js": (VENDOR / "uPlot.iife.min.js", "application/javascript"),
    "uPlot.min.css": (VENDOR / "uPlot.min.css", "text/css"),
    "uPlot.LICENSE": (VENDOR / "LICENSE", "text/plain"),
}
# The page and its API are the same origin; nothing is to be framed or cached by proxies.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
}


def register_web(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings

    async def read(fn: Callable[[Any], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        services = await runtime.services()
        async with services.pool.acquire() as conn:
            return await fn(conn)

    def known(model: str) -> bool:
        return model in settings.models

    @app.page("/dashboard", name="dashboard_page")
    async def page(web: View, request: Request) -> Response:
        headers = {**HEADERS, "Content-Type": "text/html; charset=utf-8"}
        return web.bytes((STATIC / "index.html").read_bytes(), headers=headers)

    @app.page("/dashboard/static/{name}", name="dashboard_static")
    async def static(web: View, request: Request, name: str) -> Response:
        entry = FILES.get(name)
        if entry is None:
            return web.json({"error": f"no such file: {name}"}, status=404)
        path, media_type = entry
        # aiohttp refuses a charset in `content_type`; the header itself may carry one.
        headers = {
            "Content-Type": f"{media_type}; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        return web.bytes(path.read_bytes(), headers=headers)

    @app.page("/dashboard/api/overview", name="dashboard_overview")
    async def overview(web: View, request: Request) -> Response:
        now = utc_now()
        body = await read(
            lambda conn: views.overview(
                conn, settings, now, actions=settings.dashboard_token is not None
            )
        )
        return web.json(body, headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/api/models/{model}/quality", name="dashboard_quality")
    async def quality(web: View, request: Request, model: str) -> Response:
        try:
            hours = views.hours_arg(request.query.get("hours"))
        except ValueError as exc:
            return web.json({"error": f"bad 'hours': {exc}"}, status=400)
        window = request.query.get("window") or None
        metric = request.query.get("metric") or None
        if (window is None) != (metric is None):
            return web.json({"error": "give both 'window' and 'metric', or neither"}, status=400)
        now = utc_now()
        body = await read(
            lambda conn: views.quality(
                conn, settings, model, now, window=window, metric=metric, hours=hours
            )
        )
        return web.json(body, headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/api/models/{model}/drift", name="dashboard_drift")
    async def drift(web: View, request: Request, model: str) -> Response:
        try:
            hours = views.hours_arg(request.query.get("hours"))
        except ValueError as exc:
            return web.json({"error": f"bad 'hours': {exc}"}, status=400)
        version = request.query.get("version") or None
        now = utc_now()
        body = await read(lambda conn: views.drift(conn, model, now, version=version, hours=hours))
        return web.json(body, headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/api/models/{model}/timeline", name="dashboard_timeline")
    async def timeline(web: View, request: Request, model: str) -> Response:
        body = await read(lambda conn: views.timeline(conn, model))
        return web.json(body, headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/api/session", name="dashboard_session")
    class Session(View):
        """Checks an operator token without acting: the page asks once, then remembers."""

        async def post(self, request: Request) -> Response:
            refused = actions.refusal(settings, request.headers.get("Authorization"))
            if refused is not None:
                return self.json(refused.body, status=refused.status)
            return self.json({"ok": True, "actions": ["approve", "reject", "rollback"]})

    @app.page("/dashboard/api/models/{model}/{action}", name="dashboard_action")
    class Action(View):
        async def post(self, request: Request, model: str, action: str) -> Response:
            refused = actions.refusal(settings, request.headers.get("Authorization"))
            if refused is not None:
                return self.json(refused.body, status=refused.status)
            if not known(model):
                return self.json({"error": f"model {model!r} is not configured"}, status=404)
            try:
                body = json.loads(await request.read() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                command = actions.build_command(action, model, body)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            log.info(
                "dashboard: %s %s %s by %s",
                command.command,  # type: ignore[attr-defined]
                model,
                body.get("version", ""),
                command.issued_by,
            )
            answer = await actions.perform(settings, command)
            return self.json(answer.body, status=answer.status)
