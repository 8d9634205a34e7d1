"""The shipped Prometheus alert rules are valid and fire on what they should."""

from __future__ import annotations

from tests import promtool

RULES = "config/prometheus/outcomeloop-rules.yml"


def test_the_alert_rules_pass_promtool_check() -> None:
    checked = promtool.run("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout


def test_each_alert_fires_on_its_condition_and_not_on_quiet_series() -> None:
    tested = promtool.run("test", "rules", "tests/prometheus/rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_broken_rule_would_be_caught() -> None:
    # The check above is not vacuous: promtool refuses an invalid expression.
    bad = promtool.run(
        "check",
        "rules",
        "/dev/stdin",
        stdin="groups:\n- name: x\n  rules:\n  - alert: A\n    expr: sum(\n",
    )
    assert bad.returncode != 0
