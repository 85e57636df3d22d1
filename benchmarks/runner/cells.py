"""One grid cell, run where it is scheduled (this process or a Ray worker): its family's own CLI as a child
process with its output in a log, then the finished run it made (or reused) found by its settings."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, RunError
from benchmarks.evaluation.results import RUN_REPORT_ENV, Run, load_run, newest_done_run

from .spec import Cell

WATCH_EVERY_S = 2.0  # how often a watched cell's run is looked at while it trains
STOP_GRACE_S = 20.0  # a stopped cell's command gets this long after Ctrl-C (then SIGTERM) before it is killed
# How a command ends when it was stopped from outside rather than failing on its own: Ctrl-C (run_cli's 130) or a
# signal (subprocess reports -N). A study leaves such a trial to run again instead of counting it as failed.
INTERRUPTED_EXIT_CODES = {130, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGHUP}


def run_cell(
    cell: Cell,
    results: Path,
    logs: Path,
    *,
    name: str | None = None,
    watch: Callable[[Run], bool] | None = None,
) -> dict:
    """The cell's ledger entry: ``status`` done (with ``run``) or failed (with the command's one-line ``error``).

    ``name`` names its log (default: the cell's slug). ``watch``, if given, is shown the run every few seconds while
    it trains; when it answers True the command is interrupted like Ctrl-C and the entry's status is ``stopped``."""
    logs.mkdir(parents=True, exist_ok=True)
    name = name or cell.slug
    log, report = logs / f"{name}.log", logs / f"{name}.run"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    command = [sys.executable, "-m", *cell.argv(results)]
    with open(log, "a", encoding="utf-8") as out:  # appended: a re-check or retry keeps the training log
        out.write("$ " + " ".join(command[1:]) + "\n")
        out.flush()
        child = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**child_environment(cell.cpus), RUN_REPORT_ENV: str(report.resolve())},
        )
        stopped = _wait(child, report, results, watch)
    code = child.returncode
    entry = {
        "cell": cell.key,
        "exit_code": code,
        "seconds": round(time.monotonic() - started, 1),
        "log": str(log),
        "host": socket.gethostname(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if stopped:
        return {**entry, "status": "stopped"}
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


def _wait(child: subprocess.Popen, report: Path, results: Path, watch: Callable[[Run], bool] | None) -> bool:
    """Wait for the command; True when ``watch`` stopped it."""
    if watch is None:
        child.wait()
        return False
    while True:
        try:
            child.wait(timeout=WATCH_EVERY_S)
            return False
        except subprocess.TimeoutExpired:
            pass
        run = _reported(report, results)
        if run is not None and watch(run):
            _stop(child)
            return True


def _stop(child: subprocess.Popen) -> None:
    """Ctrl-C first (the trainers mark the run interrupted), then SIGTERM, then SIGKILL."""
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        child.send_signal(stop)
        try:
            child.wait(timeout=STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _reported(report: Path, results: Path) -> Run | None:
    """The run the command has created so far (any status), once it has said which."""
    try:
        return load_run(results / Path(report.read_text(encoding="utf-8").strip()).name)
    except (OSError, RunError):
        return None


def reported_run(report: Path, results: Path) -> Run | None:
    """The finished run the cell's command says it made or reused (``report_run``), if it said so."""
    run = _reported(report, results)
    return run if run is not None and run.status == "done" else None


def run_of(cell: Cell, results: Path) -> Run | None:
    """The newest finished run of this cell's family on its dataset whose settings are the cell's."""
    fingerprint = load_dataset(cell.dataset, require_train_positives=False).fingerprint
    same = {"backbone": cell.backbone} if cell.backbone else {}
    return newest_done_run(results, cell.family, fingerprint, params=cell.wanted_params(), **same)


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def last_line(log: Path) -> str | None:
    """The command's own one-line error (the last non-empty line it printed); after a traceback, the exception's
    own line (the last lines of a framework's traceback are often its arguments)."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if len(lines) <= 1:
        return None
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        raised = [line for line in lines if EXCEPTION_LINE.match(line)]
        if raised:
            return f"{raised[-1][:400]} (traceback in the log)"
    return lines[-1][:500]


def child_environment(cpus: float) -> dict:
    """The cell's thread count is part of the cell (float sums depend on it): whichever executor runs it, PyTorch
    and TensorFlow get ``cpus`` threads, so the same seed gives the same run locally and on Ray."""
    threads = str(max(1, int(cpus)))
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads)
    env.pop("RAY_ADDRESS", None)  # a cell is an ordinary run; it never joins the cluster itself
    return env
