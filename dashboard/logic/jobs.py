"""The Train page's jobs: the trainer command, the background process, its progress, ETA and cancel."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.errors import BenchmarkError


def train_command(framework: str, dataset_root: Path, results: Path, options: dict) -> list[str]:
    """The trainer CLI call for the Train page's form (unset options are left to the trainer's defaults)."""
    import sys

    from benchmarks.models.registry import trainable_families

    trainers = {family.kind: family for family in trainable_families()}
    if framework not in trainers:
        raise BenchmarkError(f"unknown framework {framework!r}; choose {', '.join(trainers)}")
    command = [sys.executable, "-m", *trainers[framework].command.argv(dataset_root, results)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            command.append(flag)
        elif value is not None and value is not False and value != "":  # 0 is a value (0 epochs), not "unset"
            command += [flag, str(value)]
    return command


def measure_command(dataset_root: Path, results: Path, run_dir: str) -> list[str]:
    """After a run trained here: its latency by the one protocol, so the leaderboard has a figure for it."""
    import sys

    return [
        sys.executable,
        "-m",
        "benchmarks",
        "measure",
        str(dataset_root),
        "--results",
        str(results),
        "--runs",
        run_dir,
    ]


def start_training(command: list[str], log_path: Path) -> dict:
    """Run the trainer in a background process; its output goes to ``log_path``."""
    import subprocess
    import time

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w", encoding="utf-8")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return {"pid": process.pid, "process": process, "log": str(log_path), "started": time.time(), "command": command}


# Framework start-up chatter that hides the trainer's own lines (the full log stays downloadable).
LOG_NOISE = (
    "oneDNN custom operations",
    "TF_ENABLE_ONEDNN_OPTS",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "All log messages before absl::InitializeLog()",
    "Unable to register cu",
    "computation placer already registered",
    "could not open file to read NUMA node",
    "TensorFlow was not built with CUDA",
    "warnings.warn(",
    "UserWarning:",
    "FutureWarning:",
    "DeprecationWarning:",
)


def readable_log_lines(text: str) -> list[str]:
    """The log's lines without blank ones and without framework noise (``LOG_NOISE``)."""
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return [line for line in lines if not any(noise in line for noise in LOG_NOISE)]


CANCEL_GRACE_S = 5.0  # after Ctrl-C, how long a trainer gets before it is terminated


def cancel_training(job: dict) -> None:
    """Ctrl-C for the trainer: it marks its run interrupted (resumable from the last finished epoch) and exits.
    A process started where SIGINT is ignored (a server run in the background) gets SIGTERM after
    ``CANCEL_GRACE_S`` (``training_status`` sends it); its run then shows as interrupted by its stale heartbeat."""
    import signal
    import time

    if job["process"].poll() is None:
        job["process"].send_signal(signal.SIGINT)
    job.setdefault("cancelled", time.time())


def _escalate_cancel(job: dict) -> None:
    import time

    if job.get("cancelled") and job["process"].poll() is None and time.time() - job["cancelled"] > CANCEL_GRACE_S:
        job["process"].terminate()


def epoch_position(info: dict) -> tuple[float, int]:
    """(epochs done, counting the current one's finished batches as a fraction; epochs planned) from run.json."""
    params, history = info.get("params", {}), info.get("history", [])
    planned = int(params.get("epochs", 0) or 0) + int(params.get("freeze_epochs", 0) or 0)
    done = float(len(history))
    within = info.get("within_epoch")
    if isinstance(within, dict) and within.get("batches"):
        finished_now = any(
            row.get("phase") == within.get("phase") and row.get("epoch") == within.get("epoch") for row in history
        )
        if not finished_now:
            done += min(float(within.get("batch", 0)) / float(within["batches"]), 1.0)
    return done, planned


def eta_seconds(info: dict, done: float, planned: int, elapsed: float) -> float | None:
    """Seconds left at the pace so far: finished epochs' mean time (or, in the first epoch, the time since start
    over the fraction done) times what is left."""
    seconds = [row["seconds"] for row in info.get("history", []) if isinstance(row.get("seconds"), int | float)]
    if planned <= 0 or done >= planned:
        return None
    if seconds:
        return sum(seconds) / len(seconds) * (planned - done)
    return elapsed / done * (planned - done) if done > 0.05 else None


def training_status(job: dict, results: Path) -> dict:
    """running / done / failed / cancelled, the run folder once it exists, epochs finished (with the current
    epoch's batches) of planned, an ETA, and the log's tail without framework noise."""
    import time

    _escalate_cancel(job)
    process = job["process"]
    code = process.poll()
    text = Path(job["log"]).read_text(encoding="utf-8", errors="replace") if Path(job["log"]).is_file() else ""
    lines = readable_log_lines(text)
    run_dir = next((line.split("run: ", 1)[1].strip() for line in lines if line.startswith("run: ")), None)
    done_epochs, planned, eta = 0.0, 0, None
    if run_dir and (Path(run_dir) / "run.json").is_file():
        try:
            info = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
            done_epochs, planned = epoch_position(info)
            eta = eta_seconds(info, done_epochs, planned, time.time() - job["started"])
        except (ValueError, OSError, TypeError):
            pass
    error = next((line for line in reversed(lines) if line.startswith("error:")), None)
    state = "running" if code is None else ("done" if code == 0 else "failed")
    if job.get("cancelled") and state != "done":
        state, error = ("cancelling" if code is None else "cancelled"), None
    if state == "failed" and error is None:
        error = lines[-1] if lines else f"exit code {code}"
    return {
        "state": state,
        "run": run_dir,
        "epochs_done": done_epochs,
        "epochs_planned": planned,
        "eta_s": eta if state == "running" else None,
        "error": error,
        "tail": lines[-15:],
    }
