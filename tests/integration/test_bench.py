"""`make bench` in small: parts 1 and 2 on the session's broker and PostgreSQL, through the
real consumers (aiokafka alone, the naive agent, the worker in both roles). It checks what
the benchmark does, never how fast: every consumer drains the whole backlog, nothing is
lost or doubled, the rates and the report come out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks import bench
from benchmarks import bench_stats as st
from benchmarks.bench import run_bench
from benchmarks.bench_report import SECTION, markdown, paired_ratio, rich_tables
from benchmarks.bench_results import Drain, Options, Results, median_drain, round_order
from tests.conftest import Infra, SettingsFactory


@pytest.mark.integration
async def test_parts_1_and_2_drain_everything_and_report(
    make_settings: SettingsFactory, infra: Infra, tmp_path: Path
) -> None:
    opts = Options(
        parts=(1, 2),
        events=1_000,
        small_rows=1_000,
        big_rows=4_000,
        batch_events=400,
        batches=3,
        idle_cap=4.0,
        timeout=90.0,
        rounds=2,
        pair_rounds=1,
    )
    # run_bench makes a database, app id and topics of its own per consumer.
    results = await run_bench(make_settings(), opts, tmp_path / "logs", broker_pid=infra.broker.pid)

    assert results.errors == {}
    assert list(results.drains) == ["getmany", "floor", "naive", "all", "ingest"]
    assert {k: len(v) for k, v in results.rounds.items()} == {"naive": 2, "all": 3, "ingest": 3}
    for key, rounds in results.rounds.items():
        assert results.drains[key] in rounds  # the median round, a real drain
    assert len(results.every_drain) == 10
    for drain in results.every_drain:
        detail = (drain.key, drain.error, drain.notes)
        assert drain.error is None, detail
        assert drain.sent == drain.stored == 2_000, detail
        assert drain.lost == drain.doubled == 0, detail
        assert drain.rate is not None and drain.rate > 0, detail
        assert drain.seconds is not None and drain.first_after is not None, detail
        if drain.key != "getmany":  # its own process's CPU may round to 0 ticks
            assert drain.consumer_cpu is not None and drain.consumer_cpu > 0, detail
            assert drain.postgres_cpu is not None and drain.postgres_cpu > 0, detail
    assert results.failed == []

    batch = results.batch
    assert batch is not None
    assert len(batch.small.ms) == len(batch.big.ms) == 3
    assert batch.ratio is not None and batch.ratio > 0
    assert batch.big.database_bytes > batch.small.database_bytes

    text = markdown(results, "`pytest`", datetime.now(UTC), 1.0)
    assert text.startswith(SECTION)
    assert "### 1. Draining one backlog" in text and "### 2. Batch time" in text
    assert "**Monitoring on vs off:**" in text and "**Lost / doubled:** none" in text
    assert "**The storage floor:**" in text
    assert "| (d) worker `--role ingest`: monitoring off (median of 3 rounds)" in text
    assert "ran in 2 rounds" in text and "then (c) and (d) in 1 more" in text
    assert "| median |" in text and "| 2 | all, ingest, naive |" in text
    assert "| 3 | ingest, all | - |" in text  # a pair round: no naive drain
    assert "the median of the rounds' ratios" in text
    assert "**Against the naive agent** (the medians of the 2 rounds it ran in)" in text
    console = Console(record=True, width=200)
    for table in rich_tables(results):
        console.print(table)
    assert "Draining one backlog" in console.export_text()


@pytest.mark.integration
async def test_part_4_samples_the_worker_and_the_broker(
    make_settings: SettingsFactory, infra: Infra, tmp_path: Path
) -> None:
    """A steady stream through the worker: every outcome matured, the worker's RSS and the
    broker's CPU share and RSS sampled and reported."""
    opts = Options(parts=(4,), steady_seconds=8.0, latency_rate=200.0, rss_every=1.0)
    results = await run_bench(make_settings(), opts, tmp_path / "logs", broker_pid=infra.broker.pid)

    assert results.errors == {}
    s = results.steady
    assert s is not None and s.error is None
    assert s.sent == 800 and s.matured == s.sent, (s.sent, s.matured)
    assert len(s.rss) >= 4 and all(kib > 0 for _, kib in s.rss)
    first, last = s.broker_share
    assert first is not None and last is not None and first > 0 and last > 0
    start, end = s.broker_rss
    assert start is not None and end is not None and start > 0
    text = markdown(results, "`pytest`", datetime.now(UTC), 1.0)
    assert "### 4. Worker memory over a steady run" in text and "The broker used" in text


def test_cpu_and_rates_from_samples() -> None:
    fields = st.stat_fields("42 (a (b) c) S 1 " + " ".join(["0"] * 9) + " 10 20 3 4 0")
    assert st.parent_pid(fields) == 1
    assert st.cpu_ticks(fields) == 37
    assert st.vmrss_kib("Name:\tx\nVmRSS:\t  2048 kB\n") == 2048
    series = st.Series((0.0, 1.0, 2.0, 3.0, 10.0), (0.0, 1.0, 1.5, 1.55, 1.6))
    assert series.between(0.5, 1.5) == pytest.approx(0.75)
    assert series.covers(0.0, 3.0) and not series.covers(-1.0, 3.0)
    assert st.idle_from(series, 0.0, window=1.0, cores=0.1) == 2.0
    assert st.per_second(3000, 1.5) == 2000 and st.per_second(1, 0.0) is None
    assert st.us_per_event(0.3, 3000) == pytest.approx(100.0)
    assert st.percentile([1.0, 2.0, 3.0], 50) == 2.0 and st.percentile([], 50) is None
    assert st.metric_total('ol_x{t="a"} 2.0\nol_x{t="b"} 3.0\nol_xy 9\n', "ol_x") == 5.0


def test_rounds_rotate_and_the_median_round_is_shown() -> None:
    assert [round_order(n, rounds=4) for n in range(6)] == [
        ("naive", "all", "ingest"),
        ("all", "ingest", "naive"),
        ("ingest", "naive", "all"),
        ("naive", "all", "ingest"),
        ("ingest", "all"),  # then (c) and (d) alone, alternating which goes first
        ("all", "ingest"),
    ]

    def drain(seconds: float | None, error: str | None = None) -> Drain:
        return Drain("all", "(c)", 3000, stored=3000, seconds=seconds, error=error)

    slow, mid, fast, broken = drain(3.0), drain(2.0), drain(1.0), drain(None, "died")
    assert median_drain([fast, slow, mid]) is mid
    assert median_drain([fast, slow]) is slow  # the lower of an even count
    assert median_drain([broken, fast, slow]) is slow  # a failed round is never the median
    assert median_drain([broken]) is broken
    results = Results(Options(), drains={"all": mid}, rounds={"all": [fast, mid, broken]})
    assert results.every_drain == [mid, fast, broken]
    assert results.failed == ["all: died"]


def test_monitoring_on_vs_off_is_the_median_of_side_by_side_ratios() -> None:
    def drains(key: str, *seconds: float) -> list[Drain]:
        return [Drain(key, key, 3000, stored=3000, seconds=s) for s in seconds]

    # One slow spell of the machine (round 3) slows the one (c) drain it covered: the
    # medians' ratio (1,500 / 3,000) makes that the cost of monitoring; the rounds' don't.
    rounds = {"all": drains("all", 1.0, 2.2, 2.0), "ingest": drains("ingest", 1.0, 2.0, 1.0)}
    results = Results(Options(), rounds=rounds)
    assert paired_ratio(results, "all", "ingest") == pytest.approx(1 / 1.1)
    # A failed drain keeps its round's place: the other rounds still pair up.
    failed = Drain("all", "all", 3000, error="died")
    gapped = {
        "all": [rounds["all"][0], failed, *rounds["all"][1:]],
        "ingest": [rounds["ingest"][0], *drains("ingest", 0.5), *rounds["ingest"][1:]],
    }
    assert paired_ratio(Results(Options(), rounds=gapped), "all", "ingest") == pytest.approx(
        1 / 1.1
    )
    assert (
        paired_ratio(
            Results(Options(), rounds={k: v[:1] for k, v in rounds.items()}), "all", "ingest"
        )
        is None
    )  # one round: no median of ratios


def test_the_command_line_takes_rounds_and_refuses_none() -> None:
    parse = bench._parser().parse_args
    assert bench.options_from(parse(["--rounds", "5"])).rounds == 5
    assert bench.options_from(parse(["--pair-rounds", "0"])).pair_rounds == 0
    assert bench.options_from(parse(["--quick"])).rounds == Options().rounds == 3
    with pytest.raises(SystemExit) as refused:
        parse(["--rounds", "0"])
    assert refused.value.code == 2
