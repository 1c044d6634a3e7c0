"""What one run of a scenario measured, medians over rounds, the table and the JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Sample:
    """One run of one scenario: completed operations, errors, latency, and
    the CPU seconds the load generator used (to show it had headroom)."""

    operations: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float
    # Set by the caller: CPU seconds of the server's master and workers.
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Scenario:
    name: str
    backend: str
    unit: str
    samples: list[Sample] = field(default_factory=list)

    def summary(self, ceiling: float | None) -> dict[str, Any]:
        s = self.samples
        rate = median([x.rate for x in s])
        operations = sum(x.operations for x in s)
        seconds = sum(x.seconds for x in s)
        return {
            "scenario": self.name,
            "backend": self.backend,
            "unit": self.unit,
            "rounds": len(s),
            "rate": rate,
            "ratio_to_c": rate / ceiling if ceiling else None,
            "p50_ms": median([x.p50_ms for x in s]),
            "p99_ms": median([x.p99_ms for x in s]),
            "operations": operations,
            "errors": sum(x.errors for x in s),
            "server_cpu_ms_per_op": (
                1000 * sum(x.server_cpu for x in s) / operations if operations else None
            ),
            # Share of one core the load generator used while it ran.
            "client_cpu_cores": sum(x.client_cpu for x in s) / seconds if seconds else None,
            "samples": [{**asdict(x), "rate": x.rate} for x in s],
        }


def drift(first: float | None, last: float | None) -> float | None:
    """How far ``last`` moved from ``first``, as a fraction of it."""
    if first is None or last is None or first <= 0:
        return None
    return (last - first) / first


def format_table(
    rows: list[dict[str, Any]],
    memory: list[dict[str, Any]],
    soaks: list[dict[str, Any]],
    bursts: list[dict[str, Any]],
) -> str:
    header = (
        f"{'scenario':<24} {'backend':<9} {'rate':>10} {'unit':<11} {'x C':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'srv CPU ms/op':>13} {'gen cores':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row['ratio_to_c']:.2f}" if row["ratio_to_c"] is not None else "-"
        cpu = row["server_cpu_ms_per_op"]
        gen = row["client_cpu_cores"]
        lines.append(
            f"{row['scenario']:<24} {row['backend']:<9} {row['rate']:>10.1f} {row['unit']:<11} "
            f"{ratio:>6} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['errors']:>6} "
            f"{(f'{cpu:.2f}' if cpu is not None else '-'):>13} "
            f"{(f'{gen:.2f}' if gen is not None else '-'):>9}"
        )
    for burst in bursts:
        lines.append("")
        lines.append(
            f"the token endpoint alone and under a login burst ({burst['backend']}, "
            f"{burst['browsers']} browsers signing in, {burst['seconds']:.0f} s each):"
        )
        for x in burst["flows"]:
            if x["p99_ms_alone"] is None:
                lines.append(
                    f"  {x['scenario']:<20} {x['rate']:8.1f}/s  p99 {x['p99_ms']:8.2f} ms  "
                    f"errors {x['errors']:>4}"
                )
                continue
            lines.append(
                f"  {x['scenario']:<20} {x['rate']:8.1f}/s  p99 alone {x['p99_ms_alone']:8.2f} ms, "
                f"in the burst {x['p99_ms']:8.2f} ms ({_times(x['p99_ratio'])})  "
                f"errors {x['errors']:>4}"
            )
    if memory:
        lines.append("")
        lines.append("memory (sum of PSS, master + workers):")
        for entry in memory:
            mib = entry["pss_mib"]
            lines.append(f"  {entry['server']:<22} {entry['when']:<24} {mib:>8.1f} MiB")
    if soaks:
        lines.append("")
        lines.append(
            "soak at half capacity (drift: the last window against the first; "
            "p50 of the flow, server CPU per operation and memory of all):"
        )
        for x in soaks:
            lines.append(
                f"  {x['scenario']:<20} {x['backend']:<9} {x['seconds']:>5.0f} s  "
                f"asked {x['asked_rate']:8.1f}/s  reached {x['rate']:8.1f}/s  "
                f"errors {x['errors']:>4}  "
                f"p50 {x['p50_ms_first']:7.2f} -> {x['p50_ms_last']:7.2f} ms "
                f"({_percent(x['p50_drift'])})  CPU/op {_percent(x['server_cpu_drift'])}  "
                f"memory {_percent(x['memory_drift'])} (from idle to the first window "
                f"{_percent(x['memory_step'])})"
            )
        for backend in dict.fromkeys(x["backend"] for x in soaks):
            readings = next(x["memory_mib"] for x in soaks if x["backend"] == backend)
            c_drift = next(x["c_drift"] for x in soaks if x["backend"] == backend)
            lines.append(
                f"  memory, {backend}: "
                + ", ".join(f"{mib:.0f} MiB at {at:.0f} s" for at, mib in readings)
            )
            lines.append(f"  C after the soak against before it ({backend}): {_percent(c_drift)}")
    return "\n".join(lines)


def _times(ratio: float | None) -> str:
    return f"x {ratio:.2f}" if ratio is not None else "-"


def _percent(fraction: float | None) -> str:
    return f"{100 * fraction:+.1f} %" if fraction is not None else "-"
