"""The command line: exit statuses, --version, help on every argument."""

from __future__ import annotations

import argparse

import pytest

from workers.cli import build_parser, exit_code


@pytest.mark.parametrize(
    ("status", "data", "code"),
    [
        ("done", {}, 0),
        ("done", {"run_status": "succeeded"}, 0),
        ("done", {"run_status": "gated"}, 3),
        ("refused", {}, 3),
        ("failed", {"run_status": "failed"}, 1),
    ],
)
def test_exit_codes_tell_done_gated_refused_and_failed_apart(
    status: str, data: dict[str, object], code: int
) -> None:
    assert exit_code(status, data) == code


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("outcomeloop ")


def test_every_argument_of_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.dest}"
        for name, command in sub.choices.items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
    assert {"models", "versions", "runs", "pending", "serve"} <= set(sub.choices)
