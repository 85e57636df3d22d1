"""The results format: one folder per run with run.json, predictions.csv and (from the evaluator) metrics.json.

Trainers and adapters only produce predictions through :class:`Run`; nothing here computes a metric.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.atomic import atomic_write, atomic_write_json, atomic_write_text
from benchmarks.data.dataset import Dataset
from benchmarks.errors import RunError

from .machine import environment, peak_rss_mb, process_alive, process_start
from .run_record import checked_record

RUN_JSON = "run.json"
PREDICTIONS_CSV = "predictions.csv"
METRICS_JSON = "metrics.json"
BOOTSTRAP_NPZ = "bootstrap.npz"  # per-label resampled AUC and AP, derived by the evaluator beside metrics.json
DEFAULT_RESULTS_DIR = Path("results")
EVAL_SPLITS = ["valid", "test"]  # what predictions.csv holds; test is seen when a run is done, never before
# Settings added to the trainers after runs were made, with the value a run that does not record one was made with
# (the default then and now): such a run matches, groups and reads as if it recorded it. A new setting whose default
# changes what runs do is not listed: older runs then do not match it and are trained again.
PARAM_DEFAULTS_WHEN_MISSING = {
    "loss": "bce",
    "recipe": "idiomatic",
    "loader": "tf.data",
    "wise_ft": 1.0,
    "fine_tune_lr": None,  # Keras: lr x fine_tune_lr_factor
    "lr_mult": 1,  # Keras: one learning rate for all (fastai's runs always record theirs)
}


@dataclass
class Run:
    path: Path
    info: dict

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @property
    def status(self) -> str:
        return self.info["status"]

    @property
    def backbone(self) -> str | None:
        return self.info.get("backbone")

    @property
    def params(self) -> dict:
        return self.info.get("params") or {}

    @property
    def timings(self) -> dict:
        return self.info.get("timings") or {}

    @property
    def model(self) -> dict:
        return self.info.get("model") or {}

    @property
    def fingerprint(self) -> str | None:
        return self.info["dataset"].get("fingerprint")

    @property
    def dataset_name(self) -> str:
        return str(self.info["dataset"].get("name") or "")

    @property
    def shown_status(self) -> str:
        """The status to show: a run still marked ``running`` whose process is gone is ``crashed`` (killed, or the
        machine went down), one on another machine silent for STALE_AFTER_S is ``stale``."""
        if self.status != "running":
            return self.status
        process = self.info.get("process") or {}
        if process.get("host") == socket.gethostname() and isinstance(process.get("pid"), int):
            return "running" if process_alive(process["pid"], process.get("started")) else "crashed"
        heartbeat = self.info.get("heartbeat") or self.info.get("created")
        try:
            age = (datetime.now(UTC) - datetime.fromisoformat(heartbeat)).total_seconds()
        except (TypeError, ValueError):
            return "stale"
        return "stale" if age > STALE_AFTER_S else "running"

    def update(self, **fields) -> None:
        """Fields into run.json, written atomically once the whole record checks out (a bad field is refused here,
        where it is made, not by every reader later)."""
        info = {**self.info, **fields}
        if info.get("status") == "running":  # who is writing, and when last: crashed runs can be told apart
            info["process"] = {"pid": os.getpid(), "host": socket.gethostname(), "started": process_start(os.getpid())}
            info["heartbeat"] = _now()
        checked_record(info, self.path / RUN_JSON)
        self.info.clear()
        self.info.update(info)
        atomic_write_json(self.path / RUN_JSON, self.info)

    def write_predictions(self, images: Sequence[str], splits: Sequence[str], scores: np.ndarray) -> None:
        """Scores in [0, 1], one row per valid/test image, one column per label in run label order."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(images), len(self.labels)):
            raise RunError(
                f"{self.path}: predictions have shape {scores.shape}, expected {(len(images), len(self.labels))}"
            )
        if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
            raise RunError(f"{self.path}: scores must be probabilities in [0, 1] with no NaN")
        table = pd.DataFrame(scores, columns=self.labels)
        table.insert(0, "split", list(splits))
        table.insert(0, "image", list(images))
        atomic_write(self.path / PREDICTIONS_CSV, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))

    def finish(self, **fields) -> None:
        """Done, with the process's peak memory so far (what making this run needed, imports and all)."""
        resources = {**self.info.get("resources", {}), "peak_rss_mb": peak_rss_mb()}
        self.update(status="done", finished=_now(), resources=resources, **fields)


def create_run(
    results_dir: Path | str,
    *,
    kind: str,
    dataset: Dataset,
    params: dict,
    backbone: str | None = None,
    labels: Sequence[str] | None = None,
) -> Run:
    """Make ``RESULTS/<run_id>/`` with run.json in status ``running``."""
    run_id = (
        f"{kind}-{backbone + '-' if backbone else ''}{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    )
    path = Path(results_dir) / run_id
    path.mkdir(parents=True, exist_ok=False)
    info = {
        "run_id": run_id,
        "kind": kind,
        "backbone": backbone,
        "dataset": {"name": dataset.name, "path": str(dataset.root.resolve()), "fingerprint": dataset.fingerprint},
        "labels": list(labels or dataset.labels),
        "params": params,
        "timings": {},
        "model": {},
        "environment": environment(),
        "created": _now(),
        "status": "running",
    }
    run = Run(path, info)
    run.update()
    report_run(run)
    return run


RUN_REPORT_ENV = "IMGBENCH_RUN_REPORT"


def report_run(run: Run) -> None:
    """Name the run this process made or reused in the file ``$IMGBENCH_RUN_REPORT``, when a grid runner asked for
    it: matching settings afterwards cannot tell a cell's run from another run that shares the cell's options and
    differs in one the cell left at its default."""
    target = os.environ.get(RUN_REPORT_ENV)
    if target:
        atomic_write_text(target, run.path.name)


@contextmanager
def recording(run: Run) -> Iterator[Run]:
    """Mark the run failed on an error and interrupted on Ctrl-C, so no run is left looking alive."""
    try:
        yield run
    except KeyboardInterrupt:
        run.update(status="interrupted", finished=_now())
        raise
    except BaseException as exc:
        run.update(status="failed", error=f"{exc.__class__.__name__}: {exc}", finished=_now())
        raise


def load_run(path: Path | str) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found")
    run_json = path / RUN_JSON
    if not run_json.is_file():
        raise RunError(f"{run_json}: missing; this folder is not a run")
    return Run(path, checked_record(_json_object(run_json, "the file is damaged"), run_json))


def _json_object(path: Path, remedy: str):
    """A JSON file that must hold an object (run.json, metrics.json, serving.json): one RunError if it does not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is this a finished run of its kind?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: damaged ({exc.__class__.__name__}); {remedy}") from None
    except OSError as exc:
        raise RunError(f"{path}: unreadable ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a JSON object, found {type(data).__name__}; {remedy}")
    return data


def read_predictions(run: Run, dataset: Dataset | None = None) -> pd.DataFrame:
    """predictions.csv, checked against the run's labels and, when given, the dataset's valid/test images."""
    csv_path = run.path / PREDICTIONS_CSV
    if not csv_path.is_file():
        raise RunError(f"{csv_path}: missing; the run has no predictions (status: {run.status})")
    try:
        table = pd.read_csv(csv_path, dtype={"image": str, "split": str})
    except Exception as exc:
        raise RunError(f"{csv_path}: unreadable ({exc})") from None
    for column in ("image", "split"):
        if column not in table.columns:
            raise RunError(f"{csv_path}: missing column '{column}'")
    score_columns = [c for c in table.columns if c not in ("image", "split")]
    expected = list(dataset.labels) if dataset is not None else run.labels
    if score_columns != expected:
        missing = [x for x in expected if x not in score_columns]
        extra = [x for x in score_columns if x not in expected]
        detail = f"missing {missing}" if missing else f"unexpected {extra}" if extra else "in a different order"
        raise RunError(f"{csv_path}: label columns do not match the dataset's labels ({detail})")
    numeric = table[score_columns].apply(pd.to_numeric, errors="coerce")
    scores = numeric.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        value = table[score_columns].iloc[row, column]
        raise RunError(
            f"{csv_path} row {row + 2}, column '{score_columns[column]}': {value!r} is not a probability in [0, 1]; "
            "scores must be numbers in [0, 1] with no empty cells"
        )
    duplicated = table.duplicated(["image", "split"], keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise RunError(
            f"{csv_path} row {row + 2}: image '{table['image'].iloc[row]}' is listed twice; keep one row per image"
        )
    if dataset is not None:
        for split in ("valid", "test"):
            wanted = set(dataset.rows(split)["image"])
            have = set(table.loc[table["split"] == split, "image"])
            if wanted - have:
                raise RunError(
                    f"{csv_path}: {len(wanted - have)} {split} image(s) have no prediction, e.g. "
                    f"{sorted(wanted - have)[0]}"
                )
    return table


def list_runs(results_dir: Path | str) -> list[Run]:
    """Every readable run below ``results_dir`` (damaged folders are skipped, not fatal)."""
    results_dir = Path(results_dir)
    runs = []
    if results_dir.is_dir():
        for child in sorted(results_dir.iterdir()):
            if (child / RUN_JSON).is_file():
                try:
                    runs.append(load_run(child))
                except RunError:
                    continue
    return runs


def finished_runs_on(results_dir: Path | str, fingerprint: str) -> list[Run]:
    """Every finished run on the dataset with this fingerprint."""
    return [run for run in list_runs(results_dir) if run.fingerprint == fingerprint and run.status == "done"]


def newest_per(runs: list[Run], key: Callable[[Run], str]) -> dict[str, Run]:
    """The newest run (by its creation time) for each value of ``key``, in the order the keys first appear."""
    newest: dict[str, Run] = {}
    for run in runs:
        name = key(run)
        if name not in newest or run.info["created"] > newest[name].info["created"]:
            newest[name] = run
    return newest


def newest_done_run(results_dir: Path | str, kind: str, fingerprint: str, **same) -> Run | None:
    """The latest finished run of ``kind`` on this dataset fingerprint whose run.json fields (``backbone=...``)
    or params (``params={...}``, compared key by key) match; a setting in ``PARAM_DEFAULTS_WHEN_MISSING`` that a
    run does not record is taken at that default."""
    wanted_params = same.pop("params", {})
    defaults = PARAM_DEFAULTS_WHEN_MISSING
    missing = object()
    found = [
        run
        for run in finished_runs_on(results_dir, fingerprint)
        if run.kind == kind
        and all(run.info.get(k) == v for k, v in same.items())
        and all(run.params.get(k, defaults.get(k, missing)) == v for k, v in wanted_params.items())
    ]
    return newest_per(found, lambda run: run.kind).get(kind)


def model_size_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


STALE_AFTER_S = 6 * 3600  # a run on another machine that has not written run.json for this long is shown stale


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Stopwatch:
    """Seconds since start, for the timings in run.json."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def read_run_file(run_dir: Path, name: str, required: tuple[str, ...] = ()) -> dict:
    """A JSON object a family keeps in its run folder (serving.json, ...), checked: one RunError if damaged."""
    path = Path(run_dir) / name
    data = _json_object(path, "train the run again")
    missing = [key for key in required if key not in data]
    if missing:
        raise RunError(f"{path}: missing field(s) {', '.join(missing)}; the file is damaged")
    return data


METRICS_KEYS = ("overall", "per_label", "thresholds", "curves")


def read_metrics(run: Run) -> dict | None:
    """A run's metrics.json, its shape checked; None when the run has not been evaluated. Never writes."""
    path = run.path / METRICS_JSON
    if not path.is_file():
        return None
    fix = f"write it again with `python -m benchmarks evaluate {run.path}`"
    metrics = _json_object(path, fix)
    missing = [k for k in METRICS_KEYS if not isinstance(metrics.get(k), dict)]
    if missing:
        raise RunError(f"{path}: damaged (no {', '.join(missing)}); {fix}")
    thresholds = metrics["thresholds"]
    if sorted(thresholds) != sorted(run.labels) or not all(isinstance(v, (int, float)) for v in thresholds.values()):
        raise RunError(f"{path}: thresholds do not match the run's labels; {fix}")
    return metrics


def read_thresholds(run: Run) -> dict[str, float] | None:
    """Per-label thresholds the evaluator tuned on valid, or None if the run is not evaluated yet."""
    metrics = read_metrics(run)
    return {label: float(value) for label, value in metrics["thresholds"].items()} if metrics else None
