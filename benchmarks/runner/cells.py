"""One grid cell, run where it is scheduled (this process or a Ray worker): its family's own CLI as a child
process with its output in a log, then the finished run it made (or reused) found by its settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, RunError
from benchmarks.evaluation.results import RUN_REPORT_ENV, Run, load_run, newest_done_run

from .spec import Cell


def run_cell(cell: Cell, results: Path, logs: Path) -> dict:
    """The cell's ledger entry: ``status`` done (with ``run``) or failed (with the command's one-line ``error``)."""
    logs.mkdir(parents=True, exist_ok=True)
    log, report = logs / f"{cell.slug}.log", logs / f"{cell.slug}.run"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    command = [sys.executable, "-m", *cell.argv(results)]
    with open(log, "a", encoding="utf-8") as out:  # appended: a re-check or retry keeps the training log
        out.write("$ " + " ".join(command[1:]) + "\n")
        out.flush()
        code = subprocess.call(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**_child_environment(cell), RUN_REPORT_ENV: str(report.resolve())},
        )
    entry = {
        "cell": cell.key,
        "seconds": round(time.monotonic() - started, 1),
        "log": str(log),
        "host": socket.gethostname(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if code != 0:
        return {**entry, "status": "failed", "error": last_line(log) or f"exit code {code}"}
    try:
        run = reported_run(report, results) or run_of(cell, results)
    except BenchmarkError as exc:
        run, error = None, str(exc)
    else:
        error = "the command finished but no finished run with the cell's settings is in the results folder"
    if run is None:
        return {**entry, "status": "failed", "error": error}
    return {**entry, "status": "done", "run": run.run_id}


def reported_run(report: Path, results: Path) -> Run | None:
    """The finished run the cell's command says it made or reused (``report_run``), if it said so."""
    try:
        run = load_run(results / Path(report.read_text(encoding="utf-8").strip()).name)
    except (OSError, RunError):
        return None
    return run if run.status == "done" else None


def run_of(cell: Cell, results: Path) -> Run | None:
    """The newest finished run of this cell's family on its dataset whose settings are the cell's."""
    fingerprint = load_dataset(cell.dataset, require_train_positives=False).fingerprint
    same = {"backbone": cell.backbone} if cell.backbone else {}
    return newest_done_run(results, cell.family, fingerprint, params=cell.wanted_params(), **same)


def last_line(log: Path) -> str | None:
    """The command's own one-line error (the last non-empty line it printed)."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1][:500] if len(lines) > 1 else None


def _child_environment(cell: Cell) -> dict:
    """The cell's thread count is part of the cell (float sums depend on it): whichever executor runs it, PyTorch
    and TensorFlow get ``cpus`` threads, so the same seed gives the same run locally and on Ray."""
    threads = str(max(1, int(cell.cpus)))
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads)
    env.pop("RAY_ADDRESS", None)  # a cell is an ordinary run; it never joins the cluster itself
    return env
