"""Reading the one latency figure a run carries (``run.json`` → ``latency``, written by benchmarks.serving.measure).

Why its own module: the leaderboard, the charts, the report and the dashboard must all show the same number with
the same meaning, and say the same thing where there is none.
"""

from __future__ import annotations

from .results import Run

LATENCY_KEY = "latency"
BATCH = 32
NOT_MEASURED = "not measured yet (python -m benchmarks measure)"


def latency_of(run: Run) -> tuple[float | None, float | None, str]:
    """(batch-1 p50 ms, batch-32 images/s, why there is no figure: "" when there is one)."""
    record = run.info.get(LATENCY_KEY)
    if not isinstance(record, dict):
        return None, None, NOT_MEASURED
    if record.get("not_measured"):
        return None, None, str(record["not_measured"])
    single, batched = record.get("batch_1"), record.get(f"batch_{BATCH}")
    p50 = single.get("p50_ms") if isinstance(single, dict) else None
    throughput = batched.get("images_per_s") if isinstance(batched, dict) else None
    if not isinstance(p50, int | float) or not isinstance(throughput, int | float):
        return None, None, "its latency record is damaged; measure it again"
    return float(p50), float(throughput), ""
