"""The HTML report's sections from the layers above the evaluator — ease of use, tuning, robustness, learning
curves — assembled in one place for ``benchmarks report`` and the dashboard's Report page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.data.dataset import Dataset


def upper_sections(results: Path, dataset: Dataset, ease: pd.DataFrame | None = None) -> tuple[list[str], list]:
    """(HTML sections, (title, figure) pairs) for ``write_report``/``build_report``; ``ease``: the ease-of-use
    table when the caller holds it already (the dashboard caches it). A section with nothing to show is empty."""
    from benchmarks.evaluation.results import finished_runs_on
    from benchmarks.models.ease import ease_html, ease_table
    from benchmarks.robustness.page import report_section as robustness_section
    from benchmarks.robustness.table import collect
    from benchmarks.runner.learning_curves import learning_points
    from benchmarks.runner.learning_page import learning_report_section
    from benchmarks.tuning.records import report_section as tuning_section

    sections, figures = [ease_html(ease if ease is not None else ease_table(results, dataset))], []
    for section, its_figures in (
        tuning_section(results, dataset.fingerprint),
        robustness_section(collect(finished_runs_on(results, dataset.fingerprint))),
        learning_report_section(learning_points(results, dataset.fingerprint, len(dataset.rows("train")))),
    ):
        sections.append(section)
        figures += its_figures
    return sections, figures
