"""Read a `/metrics` page the way Prometheus does (prometheus_client's own parser).

Every sample of `awardbot serve` carries a `worker` label (one registry per worker, README
"Metrics"); `sample(page, name, **labels)` matches the other labels exactly and ignores it.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def families(page: str) -> dict[str, str]:
    """Each metric family on the page -> its type (counter, gauge, histogram)."""
    return {family.name: family.type for family in text_string_to_metric_families(page)}


def samples(page: str, name: str) -> list[Sample]:
    """Every sample called `name` (a counter's `..._total`, a histogram's `..._count`, ...)."""
    return [
        sample
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name
    ]


def sample(page: str, name: str, **labels: str) -> float | None:
    """The value of the one sample `name` with exactly `labels` besides `worker`, or None."""
    found = [
        s.value
        for s in samples(page, name)
        if {k: v for k, v in s.labels.items() if k != "worker"} == labels
    ]
    assert len(found) <= 1, f"{name}{labels}: {len(found)} samples"
    return found[0] if found else None
