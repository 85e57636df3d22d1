"""Which trial a study chooses: the preset's own trial 0 unless another trial beats it beyond the noise of the
valid images, so the best of N noisy valid scores cannot replace the default on luck alone. Test is never read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.evaluation.resampling import lead_needed
from benchmarks.training.options import CommonConfig

from .curves import BAND_RESAMPLES
from .settings import Budget
from .valid_resamples import ValidResampler

START = "start"  # the user attribute of trial 0, the preset's own values: what it is the start of
# Another trial replaces the start only if it is ahead of it in this share of paired valid resamples: keep-best's rule
# (benchmarks/training/keep_best.py) and its default confidence, one level up
START_CONFIDENCE = CommonConfig.keep_best_confidence


@dataclass(frozen=True)
class Choice:
    """The trial a study chose and why: ``trial`` (Optuna's), the ``start`` trial's number where there is one, and
    ``share_ahead``, the share of paired valid resamples in which the chosen trial beats the start (None where it is
    the start, or where there was no start or no predictions to pair)."""

    trial: object
    start: int | None = None
    share_ahead: float | None = None
    best: int | None = None  # the trial with the highest valid macro AUC, where it was not chosen
    lead_needed: float | None = None  # where the preset stayed: the lead its best rival needed (trial_lead_needed)

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def value(self) -> float:
        return self.trial.value


def choose(finished: list, folder: Path, budget: Budget, confidence: float = START_CONFIDENCE) -> Choice | None:
    """Among the budget's first ``finished`` trials (Optuna's): the start trial (the preset) unless others beat it
    in at least ``confidence`` of the paired valid resamples, then the one of those with the highest valid macro AUC
    (the earliest on a tie). Without a start trial (the probe, older studies) or its predictions: the highest valid
    macro AUC. Test is never consulted. None before any trial is complete."""
    complete = complete_within(finished, budget)
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.number))
    start = next((t for t in complete if t.user_attrs.get(START)), None)
    if start is None:
        return Choice(best)
    if best is start:
        return Choice(start, start.number)
    resampler = ValidResampler(BAND_RESAMPLES)
    bar = resampler.trial_samples(folder, _scored(start))
    if bar is None:  # the start's run is gone: nothing to pair with
        return Choice(best, start.number)
    resampled = {t.number: resampler.trial_samples(folder, _scored(t)) for t in complete if t is not start}
    shares = {number: 0.0 if values is None else float(np.mean(values > bar)) for number, values in resampled.items()}
    ahead = [t for t in complete if shares.get(t.number, 0.0) >= confidence]
    if not ahead:
        needed = trial_lead_needed(bar, resampled[best.number], confidence)
        return Choice(start, start.number, best=best.number, lead_needed=needed)
    chosen = max(ahead, key=lambda t: (t.value, -t.number))
    return Choice(chosen, start.number, shares[chosen.number], None if chosen is best else best.number)


def trial_lead_needed(bar: np.ndarray, values: np.ndarray | None, confidence: float = START_CONFIDENCE) -> float | None:
    """How far a trial had to lead the start on valid for the rule to confirm it on these valid images
    (``resampling.lead_needed`` of its paired difference from the start). The further a trial's predictions move
    from the start's, the larger the spread; on StampScenes-450's 75 valid images the best trials of most studies
    needed +0.02 to +0.03 macro AUC, as much as the gains the small-data target asks for (docs/tuning.md, "Small
    valid splits"). ``values``: the trial's valid macro AUC on the resamples ``bar`` (the start's) was scored on;
    None where it kept no predictions, or ended on the start's own weights (no spread)."""
    return None if values is None else lead_needed(float(np.std(values - bar)), confidence)


def complete_within(finished: list, budget: Budget) -> list:
    """The complete trials among the budget's first ``finished`` ones: what a study chooses (and soups) from."""
    from optuna.trial import TrialState

    within = sorted(finished, key=lambda t: t.number)[: budget.trials]
    return [t for t in within if t.state == TrialState.COMPLETE]


def choice_line(chosen: Choice) -> str:
    """Why the study chose what it chose, in one line."""
    if chosen.start is None:
        return f"chosen: trial {chosen.number}, the highest valid macro AUC ({chosen.value:.4f})"
    if chosen.number == chosen.start and chosen.best is None:
        return f"chosen: trial {chosen.number}, the preset itself: no trial scored higher on valid"
    if chosen.number == chosen.start:
        needed = (
            ""
            if chosen.lead_needed is None
            else f"; on these valid images it needed a lead of about {chosen.lead_needed:+.3f} (more valid images "
            "lower that bar)"
        )
        return (
            f"chosen: trial {chosen.number}, the preset: trial {chosen.best} scored higher on valid, but not in "
            f"{START_CONFIDENCE:.0%} of paired valid resamples (a gain valid cannot tell from noise){needed}"
        )
    return (
        f"chosen: trial {chosen.number} (valid macro AUC {chosen.value:.4f}), ahead of the preset (trial "
        f"{chosen.start}) in {chosen.share_ahead:.0%} of paired valid resamples"
    )


def choice_record(chosen: Choice) -> dict:
    """How the choice was made, for study.json and the promoted run's ``study``."""
    if chosen.start is None:
        return {"rule": "the highest valid macro AUC"}
    record = {"rule": f"the preset unless ahead of it in {START_CONFIDENCE:.0%} of paired valid resamples"}
    record["start_trial"] = chosen.start
    if chosen.share_ahead is not None:
        record["share_ahead_of_start"] = round(chosen.share_ahead, 3)
    if chosen.best is not None:
        record["highest_valid_trial"] = chosen.best
    if chosen.lead_needed is not None:
        record["lead_needed"] = round(chosen.lead_needed, 4)
    return record


def _scored(trial) -> dict:
    """What the valid resampler reads of a complete trial: its run(s) and its recorded score."""
    attrs = trial.user_attrs
    return {"state": "complete", "run": attrs.get("run"), "runs": attrs.get("runs"), "valid": trial.value}
