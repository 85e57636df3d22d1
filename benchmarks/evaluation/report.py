"""``python -m benchmarks report DATASET``: one self-contained HTML page to drop into a written report.

EDA verdicts and label figures, the leaderboard, macro AUC with CIs, quality vs latency, the labels × runs AUC
heatmap, ROC curves per label, and each run's paired comparison with the best run. Numbers come from
metrics.json only; plotly.js is inlined once, so the file opens offline.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path

import plotly.io as pio

from benchmarks.atomic import atomic_write_text
from benchmarks.data.dataset import Dataset

from . import charts
from .compare import compare_runs
from .evaluate import metrics_of
from .groups import compare_groups, find_group, group_runs
from .label_verdicts import MULTIPLE_COMPARISONS, best_per_label
from .leaderboard import auc_by_label, group_leaderboard, leaderboard, readable_groups, readable_table, table_notes
from .results import finished_runs_on

REPORT_TEMPLATE = "plotly_white"  # explicit, so the file looks the same from the CLI and from the dashboard


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(
    dataset: Dataset, results: Path, extra_sections: list[str] | None = None, extra_figures: list | None = None
) -> str:
    """``extra_sections``: HTML from layers above the evaluator (the ease-of-use table, tuning), placed after the
    tables; ``extra_figures``: their (section title, plotly figure) pairs, placed after the evaluator's figures."""
    from benchmarks.data.eda_report import label_figures

    parts = [
        f"<h1>{html.escape(dataset.name)} — benchmark report</h1>",
        f"<p>{len(dataset.items)} images, {len(dataset.labels)} labels, fingerprint {dataset.fingerprint}; written "
        f"{datetime.now():%Y-%m-%d %H:%M}. Test split, thresholds tuned on valid, 95% bootstrap confidence "
        "intervals.</p>",
    ]
    figures: list = []
    eda = dataset.root / "eda" / "report.json"
    if eda.is_file():
        report = json.loads(eda.read_text(encoding="utf-8"))
        parts.append(
            "<h2>Data quality</h2>"
            + _table(
                [[c["check"], c["verdict"], c["finding"], c.get("remedy", "")] for c in report["checks"]],
                ["check", "verdict", "finding", "remedy"],
            )
        )
        figures += [("Labels", f) for f in label_figures(dataset, report["statistics"]).values()]
    runs = finished_runs_on(results, dataset.fingerprint)
    table = leaderboard(results, dataset)
    if table.empty:
        parts.append("<p>No finished runs on this dataset yet.</p>")
    else:
        table = table.sort_values("macro_auc", ascending=False, na_position="last").reset_index(drop=True)
        evaluated = set(table.loc[table["macro_auc"].notna(), "run"])  # scored (from metrics.json or in memory)
        shown = readable_table(table)  # each metric as "value [95% CI]", as the text leaderboard prints it
        notes = "".join(f"<p>{html.escape(note)}</p>" for note in table_notes(table))
        parts.append("<h2>Leaderboard</h2>" + shown.to_html(index=False, na_rep="—") + notes)
        figures += [
            ("Leaderboard", charts.leaderboard_bars(table)),
            ("Leaderboard", charts.quality_latency_size(table)),
            ("Per-class", charts.auc_heatmap(auc_by_label(runs))),
        ]
        curves = {r.run_id: (metrics_of(r) or {}).get("curves", {}) for r in runs if r.run_id in evaluated}
        figures += [("Per-class", charts.roc_overlay(curves, label)) for label in dataset.labels]
        best = table["run"].iloc[0]
        rows = []
        for other in table["run"].iloc[1:]:
            if best not in evaluated or other not in evaluated:  # failed or damaged runs: the table says why
                continue
            result = compare_runs(results / best, results / other)
            for metric, entry in result["metrics"].items():
                rows.append(
                    [
                        f"{best} − {other}",
                        metric,
                        f"{entry['difference']:+.3f}",
                        str([round(c, 3) for c in entry["ci"]]),
                        entry["verdict"],
                    ]
                )
        if rows:
            parts.append(
                "<h2>Paired comparisons with the best run</h2>"
                + _table(rows, ["pair", "metric", "difference", "95% CI", "verdict"])
            )
        parts += seed_sections(results, dataset, runs)
        parts.append(best_per_label_section(runs))
    parts += extra_sections or []
    figures += extra_figures or []
    section = None
    for i, (title, figure) in enumerate(figures):
        if title != section:
            parts.append(f"<h2>{title} figures</h2>")
            section = title
        figure.update_layout(template=REPORT_TEMPLATE)  # the host's default (Streamlit's, say) must not leak in
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=i == 0))
    style = (
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}</style>"
    )
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(dataset.name)} report</title>{style}<body>"
        + "\n".join(parts)
        + "</body>"
    )


def best_per_label_section(runs: list) -> str:
    rows = [
        [
            row["label"],
            row["best"] or "—",
            "—" if row["auc"] is None else f"{row['auc']:.3f}",
            ", ".join(row["tied"]) or "—",
        ]
        for row in best_per_label(group_runs(runs))
    ]
    return "<h2>Best model per label</h2><p>test ROC-AUC, seeds of one model pooled; a model is not " + (
        "distinguishable from the best when the paired bootstrap test of their difference does not reject it "
        f"after correction for multiple comparisons ({html.escape(MULTIPLE_COMPARISONS)})</p>"
        + _table(rows, ["label", "best model", "ROC-AUC", "not distinguishable from it"])
    )


def seed_sections(results: Path, dataset: Dataset, runs: list) -> list[str]:
    """Where some model has several seeds: one row per model (mean ± sd, CI over seeds × test images) and the
    best model against each other, with P(A > B) over seed pairs. Nothing when every model has one seed."""
    groups = group_runs(runs)
    if all(len(g.runs) == 1 for g in groups):
        return []
    table = group_leaderboard(results, dataset, runs=runs)
    parts = [
        "<h2>Models over seeds</h2><p>mean ± sd over seeds [95% CI over seeds and test images]</p>"
        + readable_groups(table).to_html(index=False, na_rep="—")
    ]
    best = find_group(groups, table["model"].iloc[0])
    rows = []
    for name in table["model"].iloc[1:]:
        entry = compare_groups(best, find_group(groups, name))["metrics"]["macro_roc_auc"]
        if entry["difference"] is None:
            continue
        p_better = f"{entry['p_a_better']:.2f}" if "p_a_better" in entry else "—"
        ci = f"[{entry['ci'][0]:+.3f}, {entry['ci'][1]:+.3f}]"
        rows.append([f"{best.name} − {name}", f"{entry['difference']:+.3f}", ci, p_better, entry["verdict"]])
    if rows:
        parts.append(
            "<h2>The best model against each other, over seeds (macro AUC)</h2>"
            + _table(rows, ["pair", "difference", "95% CI", "P(A > B)", "verdict"])
        )
    return parts


def write_report(
    dataset: Dataset,
    results: Path,
    out: Path | None = None,
    extra_sections: list[str] | None = None,
    extra_figures: list | None = None,
) -> Path:
    out = Path(out) if out else Path(results) / f"report-{dataset.name.lower()}.html"
    return atomic_write_text(out, build_report(dataset, Path(results), extra_sections, extra_figures))
