"""The grid driver: build missing datasets, skip finished cells, run the rest on an executor, keep a ledger.

The ledger (``RESULTS/grids/<name>.json``) is written by the driver alone, atomically after every cell, so a grid
stopped by Ctrl-C or a lost node resumes where it was: a cell counts as finished only while its run folder says
done. A failed cell is recorded with its error and the others go on. A finished cell's command still runs again,
with ``--skip-existing``: the ledger names a cell by its preset's *name*, and only the command knows what that
preset holds today, so after a preset changes the cell trains anew instead of keeping a run made with the old one
(a cell whose run still matches takes seconds and keeps its entry).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from benchmarks.atomic import atomic_write_json
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, RunError
from benchmarks.evaluation.results import list_runs, load_run

from .cells import run_cell
from .spec import Cell, GridSpec

EXECUTORS = ("local", "ray")


def grid_folder(results: Path, spec: GridSpec) -> Path:
    return results / "grids" / spec.name


def ledger_path(results: Path, spec: GridSpec) -> Path:
    return grid_folder(results, spec) / "cells.json"


def read_ledger(results: Path, spec: GridSpec) -> dict:
    path = ledger_path(results, spec)
    if not path.is_file():
        return {"spec": str(spec.path), "cells": {}}
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        ledger = None
    if not isinstance(ledger, dict) or not isinstance(ledger.get("cells"), dict):
        raise BenchmarkError(
            f"{path}: damaged grid ledger; delete it and run the grid again (finished runs are reused, not retrained)"
        )
    return ledger


def is_finished(entry: dict | None, results: Path) -> bool:
    if not entry or entry.get("status") != "done" or not isinstance(entry.get("run"), str):
        return False
    try:
        return load_run(results / Path(entry["run"]).name).status == "done"
    except RunError:
        return False


def ensure_datasets(spec: GridSpec, dry_run: bool = False) -> None:
    """Build the datasets the spec may build (``build = {...}``) and refuse any other that is missing."""
    for entry in spec.datasets:
        if (entry.path / "dataset.json").is_file() or (entry.path / "labels.csv").is_file():
            continue
        if entry.subset is not None:  # its full dataset comes first in spec.datasets, so it is there by now
            command = [sys.executable, "-m", "benchmarks", "subset", str(entry.subset["of"]), str(entry.path)]
            command += ["--per-label", str(entry.subset["per_label"]), "--draw", str(entry.subset["draw"])]
            print(f"making {entry.path}: {' '.join(command[2:])}", flush=True)
            if not dry_run and subprocess.call(command) != 0:
                raise BenchmarkError(f"{spec.path}: making {entry.path} failed (the command above)")
            continue
        if entry.build is None:
            raise BenchmarkError(
                f"{spec.path}: dataset {entry.path} not found; create it, or add build = {{}} to build StampScenes"
            )
        command = [sys.executable, "-m", "benchmarks", "build-default", str(entry.path)]
        for name, value in entry.build.items():
            command += [f"--{name}", str(value)]
        print(f"building {entry.path}: {' '.join(command[2:])}", flush=True)
        if not dry_run and subprocess.call(command) != 0:
            raise BenchmarkError(f"{spec.path}: building {entry.path} failed (the command above)")


def estimate_seconds(cell: Cell, entry: dict | None, results: Path) -> float | None:
    """From this cell's last attempt, else the newest finished run of the family with the same image size — on the
    same dataset, or on another scaled by image count (wall time: created to finished); a tuning cell's study as
    that many runs as its budget's trials (a rough guess: its space reaches longer and shorter trainings)."""
    if entry and isinstance(entry.get("seconds"), (int, float)) and entry.get("status") == "done":
        return float(entry["seconds"])
    size = cell.options.get("img-size")
    same = [
        r
        for r in list_runs(results)
        if r.kind == cell.family and r.status == "done" and (size is None or r.params.get("img_size") == size)
    ]
    here = [r for r in same if Path(r.info["dataset"].get("path", "")).name == cell.dataset.name]
    for run in sorted(here or same, key=lambda r: r.info["created"], reverse=True):
        try:
            seconds = datetime.fromisoformat(run.info["finished"]) - datetime.fromisoformat(run.info["created"])
        except (KeyError, TypeError, ValueError):
            continue
        per_run = seconds.total_seconds() * (1.0 if here else _image_ratio(cell.dataset, run))
        return per_run * (cell.tune["trials"] if cell.tune else 1)  # a study: its budget of such runs, at most
    return None


def _image_ratio(dataset: Path, run) -> float:
    """How many images the cell's dataset has per image of the run's (1 when either cannot be read)."""
    try:
        mine = len(load_dataset(dataset, require_train_positives=False).items)
        theirs = len(load_dataset(Path(run.info["dataset"]["path"]), require_train_positives=False).items)
    except BenchmarkError:
        return 1.0
    return mine / theirs if theirs else 1.0


def run_grid(
    spec: GridSpec,
    results: Path,
    *,
    executor: str = "local",
    address: str | None = None,
    max_parallel: int | None = None,
    dry_run: bool = False,
) -> dict:
    """Re-check every finished cell, run the rest; return the ledger. Failed cells are recorded, never fatal."""
    if executor not in EXECUTORS:
        raise BenchmarkError(f"--executor {executor!r}: choose {' or '.join(EXECUTORS)}")
    if max_parallel is not None and max_parallel < 1:
        raise BenchmarkError("--max-parallel must be at least 1")
    ledger = read_ledger(results, spec)
    pending = [cell for cell in spec.cells if not is_finished(ledger["cells"].get(cell.key), results)]
    recheck = [cell for cell in spec.cells if cell not in pending]
    if dry_run:
        print_plan(spec, pending, ledger, results, max_parallel or 1)
        ensure_datasets(spec, dry_run=True)
        return ledger
    ensure_datasets(spec)
    logs = grid_folder(results, spec) / "logs"
    ledger.update(spec=str(spec.path), executor=executor, started=datetime.now(UTC).isoformat(timespec="seconds"))
    if recheck:
        print(f"grid {spec.name}: {len(recheck)} finished cell(s) re-checked through --skip-existing (seconds each)")
    bar = tqdm(total=len(recheck) + len(pending), desc=f"grid {spec.name}", unit="cell")
    run_on = run_locally if executor == "local" else _ray_runner(address)
    try:
        for entry in run_on(recheck + pending, results, logs, max_parallel):
            bar.update(1)
            before = ledger["cells"].get(entry["cell"])
            if before and entry["status"] == "done" and entry.get("run") == before.get("run"):
                continue  # re-checked: its run still matches the cell's settings, and the entry keeps its timing
            ledger["cells"][entry["cell"]] = entry
            atomic_write_json(ledger_path(results, spec), ledger)
            outcome = entry.get("run") if entry["status"] == "done" else f"FAILED: {entry.get('error')}"
            bar.write(f"{entry['cell']}: {outcome} ({entry['seconds']:.0f} s)")
    finally:
        bar.close()
    return ledger


Runner = Callable[[list[Cell], Path, Path, int | None], Iterable[dict]]


def run_locally(cells: list[Cell], results: Path, logs: Path, max_parallel: int | None) -> Iterator[dict]:
    """The same cells without Ray: one child process per cell, at most ``max_parallel`` (default 1) at once."""
    if (max_parallel or 1) == 1:
        for cell in cells:
            yield run_cell(cell, results, logs)
        return
    with ThreadPoolExecutor(max_parallel) as pool:
        futures = [pool.submit(run_cell, cell, results, logs) for cell in cells]
        for future in as_completed(futures):
            yield future.result()


def _ray_runner(address: str | None) -> Runner:
    from .ray_executor import run_on_ray

    return lambda cells, results, logs, max_parallel: run_on_ray(cells, results, logs, max_parallel, address)


def print_plan(spec: GridSpec, pending: list[Cell], ledger: dict, results: Path, max_parallel: int) -> None:
    done = len(spec.cells) - len(pending)
    print(f"grid {spec.name}: {len(spec.cells)} cells, {done} finished, {len(pending)} to run")
    if done:
        print(
            f"  (the {done} finished are re-checked first with --skip-existing: seconds each, unless settings changed)"
        )
    total, unknown = 0.0, 0
    for cell in pending:
        seconds = estimate_seconds(cell, ledger["cells"].get(cell.key), results)
        total += seconds or 0
        unknown += seconds is None
        shown = "unknown" if seconds is None else f"~{seconds / 60:.1f} min"
        print(f"  {cell.key}  ({shown})  python -m {' '.join(cell.argv(results))}")
    if pending:
        print(
            f"estimated: ~{total / 60 / max_parallel:.0f} min at --max-parallel {max_parallel}"
            + (f" (+ {unknown} cells with no earlier run to go by)" if unknown else "")
        )
