"""One /metrics for a `--role all` worker whose ingestion runs in a child process: the
child's samples merged into this process's, so Prometheus scrapes one target. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# Sample values that add up across processes; any other (gauges, info) is this process's.
ADDITIVE = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def merge_families(own: Iterable[Metric], other: Iterable[Metric]) -> list[Metric]:
    """Every family of both. A sample only one process has is kept as it is; one both
    have is summed for counters and histograms (each process counted its own events) and
    left as this process's for gauges and process facts."""
    merged: dict[str, Metric] = {}
    for family in own:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = list(family.samples)
        merged[family.name] = copy
    for family in other:
        if family.name.endswith("_created"):
            continue  # the text format splits these off; this process's own stand
        mine = merged.get(family.name)
        if mine is None:
            merged[family.name] = family
            continue
        index = {_key(s): i for i, s in enumerate(mine.samples)}
        for sample in family.samples:
            at = index.get(_key(sample))
            if at is None:
                mine.samples.append(sample)
            elif mine.type in ADDITIVE and not sample.name.endswith("_created"):
                old = mine.samples[at]
                mine.samples[at] = old._replace(value=old.value + sample.value)
    return list(merged.values())


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merged_text(own: CollectorRegistry, other_text: str) -> bytes:
    """This registry's exposition with another process's (text format) merged in."""
    other = list(text_string_to_metric_families(other_text))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(merge_families(own.collect(), other)))  # type: ignore[arg-type]
    return generate_latest(registry)
