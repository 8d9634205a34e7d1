"""The dashboard's pure parts: who may act, which command an action becomes, what the
operator is answered, and which series a chart starts on."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import CommandResult
from schemas.commands import ApproveVersion, Command, RejectVersion, RollbackModel
from workers.dashboard import actions, views
from workers.settings import AlertRule, ModelConfig, MonitorConfig, Settings


def settings(token: str | None = "s3cret") -> Settings:
    model = ModelConfig(
        horizon_seconds=60,
        monitor=MonitorConfig(
            count_windows=(100,), alerts=(AlertRule(metric="rmse", window="last_100", above=2),)
        ),
    )
    return Settings(dashboard_token=token, models={"ctr": model}, kafka_bootstrap="x:1")


def test_without_a_configured_token_the_dashboard_is_read_only() -> None:
    answer = actions.refusal(settings(None), "Bearer anything")
    assert answer is not None and answer.status == 403
    assert "read-only" in answer.body["error"] and "OL_DASHBOARD_TOKEN" in answer.body["error"]


@pytest.mark.parametrize("header", [None, "", "s3cret", "Basic s3cret", "Bearer ", "Bearer s3cre"])
def test_a_missing_or_wrong_token_is_refused(header: str | None) -> None:
    answer = actions.refusal(settings(), header)
    assert answer is not None and answer.status == 401


def test_the_right_token_is_accepted() -> None:
    assert actions.refusal(settings(), "Bearer s3cret") is None
    assert actions.refusal(settings(), "bearer s3cret ") is None


def test_actions_become_the_cli_commands() -> None:
    approve = actions.build_command("approve", "ctr", {"version": "r3", "issued_by": "ann"})
    assert isinstance(approve, ApproveVersion) and approve.version == "r3"
    assert approve.issued_by == "ann (dashboard)" and approve.reason == "from the dashboard"
    reject = actions.build_command("reject", "ctr", {"version": "r3", "reason": "too eager"})
    assert isinstance(reject, RejectVersion) and reject.issued_by == "dashboard"
    assert reject.reason == "too eager"
    assert isinstance(actions.build_command("rollback", "ctr", {}), RollbackModel)


@pytest.mark.parametrize(
    ("action", "body", "says"),
    [
        ("approve", {}, "needs the candidate's 'version'"),
        ("reject", {"version": " "}, "needs the candidate's 'version'"),
        ("retrain", {}, "unknown action"),
        ("rollback", {"issued_by": "x\ny"}, "printable"),
        ("rollback", {"issued_by": 3}, "must be strings"),
        ("rollback", {"reason": "r" * 3000}, "invalid rollback"),
    ],
)
def test_a_bad_action_says_what_is_wrong(action: str, body: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        actions.build_command(action, "ctr", body)


def result(command: Command, status: str, detail: str = "") -> CommandResult:
    return CommandResult(
        command_id=command.command_id,
        command="approve",
        model="ctr",
        status=status,  # type: ignore[arg-type]
        detail=detail,
    )


@pytest.mark.parametrize(
    ("statuses", "http", "ok"),
    [
        (["accepted", "done"], 200, True),
        (["refused"], 409, False),
        (["accepted", "failed"], 502, False),
    ],
)
async def test_the_operator_gets_the_command_result(
    statuses: list[str], http: int, ok: bool
) -> None:
    command = actions.build_command("approve", "ctr", {"version": "r3"})
    sent: list[Command] = []

    async def send(s: Settings, c: Command, *, wait_seconds: float) -> list[CommandResult]:
        sent.append(c)
        return [result(c, st, "r3 is the champion") for st in statuses]

    answer = await actions.perform(settings(), command, send=send)
    assert sent == [command]
    assert answer.status == http and answer.body["ok"] is ok
    assert answer.body["command_id"] == command.command_id


async def test_no_answer_is_a_timeout_naming_the_likely_cause() -> None:
    async def silent(s: Settings, c: Command, *, wait_seconds: float) -> list[CommandResult]:
        return []

    command = actions.build_command("rollback", "ctr", {})
    answer = await actions.perform(settings(), command, send=silent)
    assert answer.status == 504 and "loop worker" in answer.body["detail"]


def test_a_chart_starts_on_the_first_alert_rule_and_draws_its_bound() -> None:
    s = settings()
    assert views.default_series(s, "ctr") == ("last_100", "rmse")
    assert views.default_series(s, "unknown") == ("last_500", "mae")
    assert views.bounds(s, "ctr", "last_100", "rmse") == [{"direction": "above", "value": 2}]
    assert views.bounds(s, "ctr", "last_100", "mae") == []


def test_the_span_argument_is_checked() -> None:
    assert views.hours_arg(None) == views.DEFAULT_HOURS
    assert views.hours_arg("2.5") == 2.5
    for bad in ("0", "-1", "abc", "1e9"):
        with pytest.raises(ValueError):
            views.hours_arg(bad)


def test_the_demo_keeps_its_dashboard_up_unless_told_to_exit() -> None:
    from workers.cli import build_parser

    assert build_parser().parse_args(["demo"]).exit is False
    assert build_parser().parse_args(["demo", "--exit"]).exit is True
