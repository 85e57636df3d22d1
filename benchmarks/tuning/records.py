"""Studies read back from their study.json (no Optuna needed): which studies ran on a dataset, their trials, and
each family's expected-max curve with the verdict on how the winner depends on the budget. A damaged record is
skipped with its reason, never fatal (the report and the dashboard list the rest)."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.metrics import with_interval
from benchmarks.models.search_space import space_digest

from .curves import BAND_RESAMPLES, budget_verdict, expected_max_bands
from .selection import trial_lead_needed
from .settings import selection_of
from .valid_resamples import ValidResampler

STUDY_JSON = "study.json"


@dataclass
class StudyRecord:
    path: Path
    record: dict

    @property
    def family(self) -> str:
        return self.record["family"]

    @property
    def comparable_key(self) -> str:
        """Studies that differ only by seed pool into one curve."""
        settings = {k: v for k, v in self.record["settings"].items() if k != "seed"}
        return json.dumps(settings, sort_keys=True)


def read_studies(results: Path, fingerprint: str | None = None) -> tuple[list[StudyRecord], list[str]]:
    """Every readable study below RESULTS/tuning (on this dataset), and one line per damaged one."""
    studies, skipped = [], []
    for path in sorted((Path(results) / "tuning").glob(f"*/{STUDY_JSON}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            record["family"], record["settings"]["dataset_fingerprint"], record["trials"]  # noqa: B018
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped.append(f"{path}: unreadable ({exc.__class__.__name__}); run its tune command again to rewrite it")
            continue
        if fingerprint is None or record["settings"]["dataset_fingerprint"] == fingerprint:
            studies.append(StudyRecord(path, record))
    return studies, skipped


@dataclass
class FamilyCurve:
    family: str
    title: str
    studies: list[StudyRecord]
    curves: dict  # expected_max_bands over the pooled trials: valid for every finished trial, test for complete ones
    trials: int
    complete: int
    resampled: int = 0  # trials scored on resampled valid images (the rest add no valid-image noise to the band)
    samples: np.ndarray | None = field(default=None, repr=False)  # resampled valid curves, for paired verdicts
    selection: str = "valid"  # or "3-fold CV" ...: how the trials were scored (comparable only with its like)

    @property
    def budget(self) -> str:
        return self.studies[0].record["budget"]["described"]


def within_budget(record: dict) -> list[dict]:
    """The study's finished trials up to its budget, in order: a study extended further and then asked for fewer
    trials reads as if it had stopped there (as its choice does)."""
    finished = [t for t in record["trials"] if t["state"] in ("complete", "pruned", "failed")]
    return sorted(finished, key=lambda t: t["number"])[: record["budget"]["trials"]]


def best_trial_lead(study: StudyRecord, resampler: ValidResampler) -> tuple[float, float | None] | None:
    """The study's highest-valid trial besides its preset: its lead over the preset on valid, and the lead the
    study's rule needed from it (``selection.trial_lead_needed``; None where it kept no predictions or ended on the
    preset's own weights). None for a study without a preset trial (the probe) or its predictions."""
    trials = [t for t in within_budget(study.record) if t["state"] == "complete"]
    start = next((t for t in trials if t.get("start")), None)
    others = [t for t in trials if t is not start]
    if start is None or not others:
        return None
    bar = resampler.trial_samples(study.path.parent, start)
    if bar is None:
        return None
    best = max(others, key=lambda t: (t["valid"], -t["number"]))
    return best["valid"] - start["valid"], trial_lead_needed(bar, resampler.trial_samples(study.path.parent, best))


def describe_lead(lead: tuple[float, float | None] | None) -> str:
    """``best_trial_lead`` as "lead / needed", for tables and captions."""
    if lead is None:
        return "—"
    gain, needed = lead
    return f"{gain:+.3f} / " + ("— (ended on the preset's weights)" if needed is None else f"{needed:+.3f}")


def study_title(record: dict) -> str:
    """The family's title, and how the study chose where it was not on valid: "fastai (3-fold CV)"."""
    selection = selection_of(record["settings"])
    return record.get("title", record["family"]) + (f" ({selection})" if selection != "valid" else "")


def family_curves(studies: list[StudyRecord], dataset: Dataset | None = None) -> list[FamilyCurve]:
    """One curve per family and settings, over the finished trials of all its seeds' studies (k trials like these);
    bands over trials and, for trials whose predictions are kept, over the valid images (``dataset``: the studies'
    dataset when the caller has it loaded; otherwise each trial's run names it)."""
    groups: dict[tuple, list[StudyRecord]] = {}
    for study in studies:
        groups.setdefault((study.family, study.comparable_key), []).append(study)
    resampler = ValidResampler(BAND_RESAMPLES, dataset)
    curves = []
    for (family, _), members in groups.items():
        scored = [(s, t) for s in members for t in within_budget(s.record) if t.get("valid") is not None]
        if not scored:
            continue
        pools = [resampler.samples(s.path.parent, [t for m, t in scored if m is s]) for s in members]
        valid_samples = np.concatenate([pool for pool, _ in pools], axis=1)
        stream = zlib.crc32(family.encode())
        valid = [t["valid"] for _, t in scored]
        bands, samples = expected_max_bands(valid, valid_samples=valid_samples, stream=stream, with_samples=True)
        complete = [i for i, (_, t) in enumerate(scored) if t.get("test") is not None]
        if complete:
            test_bands = expected_max_bands(
                [valid[i] for i in complete],
                [scored[i][1]["test"] for i in complete],
                valid_samples=valid_samples[:, complete],
                stream=stream,
            )
            bands.update({k: v for k, v in test_bands.items() if k.startswith("test")})
        title = study_title(members[0].record)
        selection = selection_of(members[0].record["settings"])
        resampled = sum(count for _, count in pools)
        curves.append(
            FamilyCurve(family, title, members, bands, len(scored), len(complete), resampled, samples, selection)
        )
    return with_distinct_titles(curves)


def with_distinct_titles(curves: list[FamilyCurve]) -> list[FamilyCurve]:
    """Curves of one family over different search spaces (a space changed between studies) titled apart by the
    space's digest, the name a tuned run's ``params.tuning.space`` gives it on the leaderboard."""
    titles = Counter(curve.title for curve in curves)
    for curve in curves:
        if titles[curve.title] > 1:
            curve.title += f" (space {space_digest(curve.studies[0].record['settings']['space'])})"
    return curves


def titled_studies(studies: list[StudyRecord], curves: list[FamilyCurve]) -> list[tuple[str, StudyRecord]]:
    """Each study with the title of the curve it is pooled into (a study with no scored trial yet: its own)."""
    titles = {study.path: curve.title for curve in curves for study in curve.studies}
    return [(titles.get(study.path, study_title(study.record)), study) for study in studies]


def verdicts(curves: list[FamilyCurve]) -> list[str]:
    """For every pair of families chosen the same way (on valid, or with the same folds): how their expected best
    valid macro AUC compares across budgets (the paired difference of their resampled curves)."""
    return [
        budget_verdict(a.title, a.curves, b.title, b.curves, samples=(a.samples, b.samples))
        for a, b in combinations(curves, 2)
        if a.family != b.family and a.selection == b.selection
    ]


def band_note(curves: list[FamilyCurve]) -> str:
    """What the bands are over, said beside every table: trials, and valid images for the trials that kept their
    predictions."""
    counts = ", ".join(f"{c.title} {c.resampled} of {c.trials}" for c in curves)
    return (
        "95% bootstrap band over trials and valid images (each trial rescored on the same resampled valid images; "
        f"trials with predictions: {counts}; the others, pruned, keep their recorded score)"
    )


def curve_table(curve: FamilyCurve, ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> list[dict]:
    """Rows of the curve at a few budgets, for text tables."""
    rows = []
    n = len(curve.curves["k"])
    for k in sorted({k for k in ks if k < n} | {n}):
        row = {"family": curve.title, "trials": k, "valid": _at(curve.curves, "valid", k - 1)}
        # beyond the complete trials' count (pruned ones have no test score) the test curve has no value
        row["test"] = _at(curve.curves, "test", k - 1) if k <= len(curve.curves.get("test") or []) else "—"
        rows.append(row)
    return rows


def _at(curves: dict, name: str, i: int) -> str:
    return with_interval(curves[name][i], (curves[f"{name}_low"][i], curves[f"{name}_high"][i]))


def report_section(results: Path, fingerprint: str) -> tuple[str, list]:
    """The HTML report's tuning section (curve table per family and the budget verdicts) and its chart; empty
    when no study ran on the dataset."""
    import html

    import pandas as pd

    from benchmarks.evaluation.charts import expected_max_overlay

    studies, skipped = read_studies(results, fingerprint)
    curves = family_curves(studies)
    if not curves:
        return "", []
    budgets = sorted({curve.budget for curve in curves})
    parts = [
        "<h2>Tuning</h2><p>Each family tuned on this dataset (<code>python -m benchmarks tune</code>) with "
        f"{' / '.join(html.escape(b) for b in budgets)} per study; expected best valid macro AUC with k trials "
        "(unbiased estimator, Dodge et al. 2019; exact for random search), the expected test macro AUC of the trial "
        "valid picks, ["
        f"{html.escape(band_note(curves))}]. Selection never read test.</p>"
    ]
    if len(budgets) > 1:
        parts.append("<p><b>The families were given different budgets</b>: compare them at equal k only.</p>")
    for curve in curves:
        parts.append(f"<h3>{html.escape(curve.title)}</h3>" + pd.DataFrame(curve_table(curve)).to_html(index=False))
    parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in verdicts(curves)) + "</ul>")
    parts += [f"<p>skipped: {html.escape(line)}</p>" for line in skipped]
    return "\n".join(parts), [("Tuning", expected_max_overlay({c.title: c.curves for c in curves}))]
