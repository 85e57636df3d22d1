"""What a grid found, per dataset: the per-model table (mean ± sd over seeds, CI over seeds × test images) and the
paired comparisons a reader asks first — every model against the linear probe, and the seeded models against each
other — with P(A > B) and a verdict only where the noise allows one. Written as Markdown beside the ledger."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from benchmarks.atomic import atomic_write_text
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.groups import compare_groups, group_runs
from benchmarks.evaluation.leaderboard import format_table, group_leaderboard
from benchmarks.evaluation.ranks import MIN_DATASETS, average_ranks, scores_by_dataset, verdict
from benchmarks.evaluation.results import load_run
from benchmarks.models.registry import BAR, baseline_kind

from .grid import grid_folder
from .spec import GridSpec


def grid_summary(spec: GridSpec, ledger: dict, results: Path) -> str:
    lines = [f"# Grid {spec.name}", "", f"Spec: `{spec.path}`. {_cell_counts(spec, ledger)}", ""]
    for entry in spec.datasets:
        runs = _grid_runs(spec, ledger, results, entry.path)
        if not runs:
            continue
        dataset = load_dataset(entry.path, require_train_positives=False)
        lines += [f"## {entry.path} ({dataset.name}, {len(dataset.rows('test'))} test images)", ""]
        table = group_leaderboard(results, dataset, runs=runs).drop(columns=["runs"])  # run ids: cells.json
        lines += [format_table(table, markdown=True), ""]
        lines += ["| A − B | macro AUC (95% CI) | P(A > B) | verdict |", "|---|---|---|---|"]
        for a, b in _pairs(group_runs(runs)):
            m = compare_groups(a, b)["metrics"]["macro_roc_auc"]
            if m["difference"] is None:
                continue
            ci = f"{m['difference']:+.4f} [{m['ci'][0]:+.4f}, {m['ci'][1]:+.4f}]"
            p = f"{m['p_a_better']:.2f}" if "p_a_better" in m else "—"
            lines.append(f"| {a.name} − {b.name} | {ci} | {p} | {m['verdict']} |")
        lines.append("")
    lines += _ranks_section(spec, ledger, results)
    failed = [e for e in ledger["cells"].values() if e.get("status") == "failed"]
    if failed:
        lines += ["## Failed cells", ""] + [f"- `{e['cell']}`: {e.get('error')} (log: {e.get('log')})" for e in failed]
    return "\n".join(lines) + "\n"


def _ranks_section(spec: GridSpec, ledger: dict, results: Path) -> list[str]:
    """Average ranks and the critical difference, when the grid covers enough datasets for them."""
    if len(spec.datasets) < MIN_DATASETS:
        return []
    datasets = [load_dataset(d.path, require_train_positives=False) for d in spec.datasets if d.path.is_dir()]
    try:
        result = average_ranks(scores_by_dataset(results, datasets))
    except BenchmarkError as exc:
        return ["## Across datasets", "", str(exc), ""]
    lines = ["## Across datasets (average rank, 1 = best)", "", "| model | average rank |", "|---|---|"]
    lines += [f"| {name} | {rank:.2f} |" for name, rank in result["ranks"].items()]
    friedman = "n/a" if result["friedman_p"] is None else f"{result['friedman_p']:.4f}"
    cd = result["critical_difference"]
    return lines + ["", f"Friedman p = {friedman}, critical difference {cd:.2f}: {verdict(result)}.", ""]


def write_summary(spec: GridSpec, ledger: dict, results: Path) -> Path:
    path = grid_folder(results, spec) / "summary.md"
    atomic_write_text(path, grid_summary(spec, ledger, results))
    return path


def _grid_runs(spec: GridSpec, ledger: dict, results: Path, dataset_path: Path) -> list:
    runs = []
    for cell in spec.cells:
        entry = ledger["cells"].get(cell.key)
        if cell.dataset == dataset_path and entry and entry.get("status") == "done":
            try:
                runs.append(load_run(results / Path(entry["run"]).name))
            except BenchmarkError:
                continue
    return runs


def _pairs(groups):
    """Each model against the linear probe at its image size, then every two models trained with several seeds at
    the same size (a 96-px model against a 224-px one answers a different question)."""
    probes = [g for g in groups if g.kind == baseline_kind(BAR)]
    seeded = [g for g in groups if len(g.runs) > 1]
    pairs = []
    for group in seeded:
        same_size = [p for p in probes if _size(p) == _size(group)]
        pairs += [(group, probe) for probe in (same_size or probes)]
    pairs += [(a, b) for a, b in combinations(seeded, 2) if None in (_size(a), _size(b)) or _size(a) == _size(b)]
    return pairs


def _size(group):
    return group.runs[0].params.get("img_size")


def _cell_counts(spec: GridSpec, ledger: dict) -> str:
    statuses = [ledger["cells"].get(cell.key, {}).get("status", "not run") for cell in spec.cells]
    return ", ".join(f"{statuses.count(s)} {s}" for s in ("done", "failed", "not run") if statuses.count(s))
