"""Which runs the API serves (``SERVE_RUNS``): by default the best finished run of each kind on each dataset (by the
shared evaluator's test macro AUC), not every run a benchmark left behind; ``all`` for every one; or the run ids
to serve, comma-separated or one per line in a file (``SERVE_RUNS=@serve.txt``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import RUN_JSON, Run, load_run, read_metrics
from benchmarks.serving.predictors import can_predict

BEST, ALL = "best", "all"


def served_folders(results_dir: Path, choice: str | None) -> list[Path]:
    """The run folders to load, in name order. A named run that is not a finished run with a model is refused in
    one line (the API does not start serving something else than asked)."""
    folders = sorted(p for p in results_dir.iterdir() if (p / RUN_JSON).is_file()) if results_dir.is_dir() else []
    choice = (choice or BEST).strip()
    if choice == ALL:
        return folders
    if choice == BEST:
        return _best_per_kind(folders)
    wanted = _named(choice)
    known = {folder.name: folder for folder in folders}
    missing = [name for name in wanted if name not in known]
    if missing:
        raise BenchmarkError(
            f"SERVE_RUNS names {missing[0]}, which is not a run in {results_dir}; list run ids (GET /models of a "
            f"server with SERVE_RUNS=all shows them), or use best or all"
        )
    return [known[name] for name in sorted(wanted)]


def _named(choice: str) -> list[str]:
    if choice.startswith("@"):
        path = Path(choice[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchmarkError(f"SERVE_RUNS={choice}: cannot read {path} ({exc.strerror})") from None
        names = [line.split("#")[0].strip() for line in text.splitlines()]
    else:
        names = [part.strip() for part in choice.split(",")]
    names = [name for name in names if name]
    if not names or any("/" in name or name.startswith(".") for name in names):
        raise BenchmarkError(f"SERVE_RUNS={choice}: give run ids (folder names), best, all or @FILE")
    return names


def _best_per_kind(folders: list[Path]) -> list[Path]:
    """The finished run with the highest test macro AUC per (kind, dataset); a run that cannot be read is kept, so
    the API reports why it skipped it instead of hiding it."""
    best: dict[tuple, tuple[float, str, Path]] = {}
    unreadable = []
    for folder in folders:
        try:
            run = load_run(folder)
            if run.status != "done" or not can_predict(run):
                continue
            auc = ((read_metrics(run) or {}).get("overall") or {}).get("macro_roc_auc")
        except BenchmarkError:
            unreadable.append(folder)
            continue
        key = (run.kind, run.fingerprint)
        candidate = (auc if isinstance(auc, int | float) else float("-inf"), _created(run), folder)
        if key not in best or candidate[:2] > best[key][:2]:
            best[key] = candidate
    return sorted([entry[2] for entry in best.values()] + unreadable)


def _created(run: Run) -> str:
    return str(run.info.get("created") or "")
