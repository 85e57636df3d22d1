"""Runs into MLflow, the experiment tracker most teams already use: one MLflow run per run folder, with its settings
as params, each epoch's history as steps, the shared evaluator's metrics with their CI bounds, tags to filter by, and
the run's own files as artifacts (the model too, when asked).

Exporting again is idempotent: an MLflow run carries the folder's run id and a digest of what was exported; an
unchanged run is skipped, a changed one (re-evaluated, say) replaces its MLflow run, and nothing is duplicated. The
results folder stays the source of truth; MLflow is a view of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.errors import BenchmarkError

from .latency import latency_of
from .results import METRICS_JSON, PREDICTIONS_CSV, RUN_JSON, Run, list_runs, read_metrics
from .run_record import shared_loss_names

RUN_ID_TAG = "imgbench.run_id"
DIGEST_TAG = "imgbench.digest"
PARAM_LIMIT = 6000  # MLflow's longest param value
BATCH = 100  # params (and metrics) per log_batch call, within MLflow's limits


def default_tracking_uri(results: Path) -> str:
    """A SQLite file in the results folder: MLflow's own default backend since 3.7 (its file store is legacy)."""
    return f"sqlite:///{(Path(results) / 'mlflow.db').resolve()}"


@dataclass
class ExportSummary:
    exported: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "run id: why"


def export_runs(results: Path, tracking_uri: str | None = None, *, with_models: bool = False) -> ExportSummary:
    """Every finished run in ``results`` into MLflow at ``tracking_uri`` (default: RESULTS/mlflow.db), one
    experiment per dataset."""
    import logging

    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its table-creation notes: the summary says it all
    results = Path(results)
    if not results.is_dir():
        raise BenchmarkError(f"{results}: results folder not found")
    uri = tracking_uri or default_tracking_uri(results)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # reach the store now: a bad URI is one line, not a traceback later
    except Exception as exc:  # MLflow raises its own and SQLAlchemy's errors for a store it cannot open
        raise BenchmarkError(f"--tracking-uri {uri}: MLflow cannot open it ({exc.__class__.__name__}: {exc})") from None
    summary = ExportSummary()
    for run in list_runs(results):
        if run.status != "done":
            summary.skipped.append(f"{run.run_id}: {run.shown_status}, not finished")
            continue
        metrics = read_metrics(run)
        if metrics is None:
            summary.skipped.append(f"{run.run_id}: no metrics.json (python -m benchmarks evaluate {run.path})")
            continue
        _export_run(client, run, metrics, with_models, summary, artifact_root=results / "mlflow-artifacts")
    return summary


def _export_run(client, run: Run, metrics: dict, with_models: bool, summary: ExportSummary, artifact_root: Path):
    experiment_id = _experiment(client, run, artifact_root)
    digest = _digest(run, with_models)
    existing = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{run.run_id}'")
    if existing and all(r.data.tags.get(DIGEST_TAG) == digest for r in existing):
        summary.unchanged.append(run.run_id)
        return
    for old in existing:
        client.delete_run(old.info.run_id)
    mlflow_run = client.create_run(
        experiment_id, start_time=_millis(run.info.get("created")), tags=_tags(run, digest), run_name=run.run_id
    )
    target = mlflow_run.info.run_id
    _log(client, target, params=_params(run), metrics=_metrics(run, metrics))
    for name in (RUN_JSON, METRICS_JSON, PREDICTIONS_CSV):
        if (run.path / name).is_file():
            client.log_artifact(target, str(run.path / name))
    model = run.path / str(run.model.get("path") or "")
    if with_models and run.model.get("path") and model.exists():
        if model.is_dir():
            client.log_artifacts(target, str(model), artifact_path=f"model/{model.name}")
        else:
            client.log_artifact(target, str(model), artifact_path="model")
    client.set_terminated(target, "FINISHED", end_time=_millis(run.info.get("finished")))
    (summary.replaced if existing else summary.exported).append(run.run_id)


def _experiment(client, run: Run, artifact_root: Path) -> str:
    name = f"imgbench/{run.dataset_name or 'dataset'} ({(run.fingerprint or '')[:19]})"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifact_root.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=(artifact_root / _slug(name)).resolve().as_uri())


def _digest(run: Run, with_models: bool) -> str:
    """What the export depends on: run.json, metrics.json and whether the model went with it."""
    hashed = hashlib.sha256(str(with_models).encode())
    for name in (RUN_JSON, METRICS_JSON):
        if (run.path / name).is_file():
            hashed.update((run.path / name).read_bytes())
    return hashed.hexdigest()[:16]


def _tags(run: Run, digest: str) -> dict:
    tags = {
        RUN_ID_TAG: run.run_id,
        DIGEST_TAG: digest,
        "kind": run.kind,
        "backbone": run.backbone or "",
        "dataset": run.dataset_name,
        "dataset_fingerprint": run.fingerprint or "",
        "preset": str(run.params.get("preset") or ""),
        "machine": str((run.info.get("environment") or {}).get("cpu") or ""),
    }
    if run.params.get("seed") is not None:
        tags["seed"] = str(run.params["seed"])
    return tags


def _params(run: Run) -> dict:
    """The run's settings, nested values as JSON, each within MLflow's length limit."""
    params = {"kind": run.kind, "backbone": run.backbone or ""}
    for key, value in run.params.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        params[key] = text[:PARAM_LIMIT]
    return params


def _metrics(run: Run, metrics: dict) -> list[tuple[str, float, int]]:
    """(name, value, step): the test metrics and their CI bounds, valid macro AUC and mAP, per-label test ROC-AUC,
    timings and latency (step 0), and each history row's numbers (step = the epoch's index over both phases)."""
    rows: list[tuple[str, float, int]] = []
    for name, value in metrics.get("overall", {}).items():
        if name.endswith("_ci") and isinstance(value, list) and len(value) == 2:
            rows += [(f"{name[:-3]}_ci_low", value[0], 0), (f"{name[:-3]}_ci_high", value[1], 0)]
        else:
            rows.append((name, value, 0))
    rows += [(f"valid_{name}", value, 0) for name, value in (metrics.get("valid") or {}).items()]
    for label, values in (metrics.get("per_label") or {}).items():
        if isinstance(values, dict):
            rows.append((f"roc_auc/{_slug(label)}", values.get("roc_auc"), 0))
    rows += [(f"timing/{name}", value, 0) for name, value in run.timings.items()]
    p50, images_per_s, _ = latency_of(run)
    rows += [("latency_ms_batch_1_p50", p50, 0), ("images_per_s_batch_32", images_per_s, 0)]
    for step, row in enumerate(run.info.get("history") or []):
        named = shared_loss_names(row)
        rows += [(f"epoch/{name}", value, step) for name, value in named.items() if name not in ("phase", "epoch")]
    return [(name, float(value), step) for name, value, step in rows if _number(value)]


def _log(client, target: str, params: dict, metrics: list[tuple[str, float, int]]) -> None:
    from mlflow.entities import Metric, Param

    now = int(datetime.now().timestamp() * 1000)
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), BATCH):
        client.log_batch(target, params=items[start : start + BATCH])
    points = [Metric(name, value, now, step) for name, value, step in metrics]
    for start in range(0, len(points), BATCH * 10):
        client.log_batch(target, metrics=points[start : start + BATCH * 10])


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _millis(stamp) -> int | None:
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _slug(text: str) -> str:
    """MLflow names take letters, digits, ``_ - . /`` and spaces."""
    return re.sub(r"[^A-Za-z0-9_.\- ]+", "_", text)
