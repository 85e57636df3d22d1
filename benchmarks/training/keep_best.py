"""Keep-best: a fine-tuning run ends with the best of its starting model and its epochs on valid, and an epoch
replaces the start only where its gain survives the valid set's noise.

Why the noise test: on small data (75 valid images) epochs a hair above the LP-FT start on valid were kept, and on
test they ended up below it (docs/results.md, "Small data"). Both trainers
hand this rule their valid scores (the start's, then each epoch's); it asks the paired bootstrap the evaluator's
comparisons use, on the same valid images, and the framework saves or restores weights as it answers. Under
``--wise-ft`` the run ends on a blend of its start and its last epoch, so the rule judges that blend instead.
"""

from __future__ import annotations

import numpy as np

from benchmarks.evaluation.metrics import macro_auc, rankable
from benchmarks.evaluation.resampling import lead_needed, paired_macro_auc_gain, share_text

KEEP_BEST_RESAMPLES = 200  # ~2-4 s per epoch on 500 valid images × 11 labels with scikit-learn


def keep_best_applies(config, valid_targets, resumed: bool) -> bool:
    """Keep-best needs valid macro AUC (every label with positives and negatives in valid) and a fresh run; when
    it cannot apply, the output says why."""
    if not config.keep_best:
        return False
    if resumed:
        print("keep-best: not applied to a resumed run (its starting model is gone); the last epoch is kept")
        return False
    if not rankable(valid_targets).all():
        print(
            "keep-best: not applied — some label has no positive (or no negative) valid image, so valid macro AUC "
            "is undefined; the last epoch is kept"
        )
        return False
    return True


def start_label(config) -> str:
    """What keep-best calls the weights fine-tuning starts from."""
    return "the LP-FT starting model (the probe's head)" if config.head_init == "probe" else "the starting model"


def kept_the_start(kept: dict | None) -> bool:
    """From run.json's ``kept``: whether keep-best ended on the weights fine-tuning started from (no epoch, nor a
    WiSE-FT blend, beat them on valid beyond the noise)."""
    if not kept:
        return False
    if "start" in kept:
        return kept.get("from") == kept["start"]
    return kept.get("from") not in {epoch.get("from") for epoch in kept.get("epochs", [])}  # runs before 2026-12-05


def beats_start(gain: float, share_ahead: float, confidence: float) -> bool:
    """Keep-best's rule: weights replace the start when they score higher on valid and are ahead of it in at least
    ``confidence`` of the paired resamples."""
    return gain > 0 and share_ahead >= confidence


class KeepBest:
    """The decision, framework-free. ``offer`` each epoch's valid scores: True means "save these weights, they are
    the best so far": the epoch beats the start in at least ``confidence`` of the paired resamples and has the
    highest valid macro AUC of the epochs that do. ``confidence`` 0 keeps the highest valid macro AUC, noise or not.
    """

    def __init__(
        self, targets: np.ndarray, start_scores: np.ndarray, confidence: float, start: str, run=None, wise_ft=1.0
    ):
        self.targets, self.start_scores, self.confidence, self.start = targets, start_scores, confidence, start
        self.wise_ft, self.blend = wise_ft, None  # below 1: see ``blends``
        self.start_auc = macro_auc(targets, start_scores)
        self.best_auc, self.best_from, self.best_share = self.start_auc, None, None
        self.epochs: list[dict] = []
        self.run, self.ends_on = run, []
        self._publish()
        print(f"keep-best: {start} scores valid macro AUC {self.start_auc:.4f} before fine-tuning", flush=True)

    def _publish(self) -> None:
        """run.json's ``keep_best_progress``: after each epoch, the valid macro AUC the run would end on if it
        stopped there. A tuning study's pruner reads it (benchmarks/tuning/trial.py): a run that dips below its start
        still ends on the start, and an epoch ahead within the noise does not count."""
        if self.run is not None:
            progress = {"start_valid_macro_auc": round(self.start_auc, 5), "ends_on": self.ends_on}
            self.run.update(keep_best_progress=progress)

    @property
    def blends(self) -> bool:
        """Whether the weights are judged as a WiSE-FT blend after training: the epochs are only recorded, and the
        framework leaves the last epoch's weights in place to be blended."""
        return self.wise_ft < 1

    def offer(self, targets: np.ndarray, scores: np.ndarray, where: str) -> bool:
        auc, share, trusted, needed = self._against_start(targets, scores)
        self.epochs.append({"from": where, "valid_macro_auc": auc, "share_ahead_of_start": share, **needed})
        better = trusted and auc > self.best_auc and not self.blends
        if better:
            self.best_auc, self.best_from, self.best_share = auc, where, share
        self.ends_on = [*self.ends_on, round(self._would_end_on(auc, trusted), 5)]
        self._publish()
        return better

    def _would_end_on(self, auc: float, trusted: bool) -> float:
        """The valid macro AUC the run would end on if it stopped after this epoch. Under ``--wise-ft`` the blend
        of the start and this epoch is only made after the last epoch, so this epoch's score stands in for it where
        it beats the start beyond the noise: reporting the start would let the pruner stop every blending trial,
        unseen, as soon as the field gains on its start (docs/tuning.md)."""
        if self.blends:
            return auc if trusted else self.start_auc
        return self.best_auc

    def judge_blend(self, targets: np.ndarray, scores: np.ndarray) -> bool:
        """After training under ``--wise-ft``: True when the blend's valid scores beat the start beyond the noise
        (the run ends on it), False when the framework should put the start back."""
        auc, share, trusted, needed = self._against_start(targets, scores)
        if trusted:
            where = f"the WiSE-FT blend ({self.wise_ft:g} × the last epoch + {1 - self.wise_ft:g} × the start)"
            self.best_auc, self.best_from, self.best_share = auc, where, share
        self.blend = {"valid_macro_auc": round(auc, 4), "share_ahead_of_start": share, **needed}
        return trusted

    def _against_start(self, targets: np.ndarray, scores: np.ndarray) -> tuple[float, float | None, bool, dict]:
        """Valid macro AUC, the share of paired resamples ahead of the start, whether that gain is trusted, and
        ``{"lead_needed": ...}`` where the noise test can say how far ahead it had to be."""
        if targets.shape != self.targets.shape or not np.array_equal(targets, self.targets):
            # the valid images came in another order (fastai's data-parallel validation gathers them per batch
            # across processes): no pairing is possible, so the epoch is judged on its point value alone
            auc = macro_auc(targets, scores)
            return auc, None, auc > self.start_auc, {}
        paired = paired_macro_auc_gain(targets, scores, self.start_scores, resamples=KEEP_BEST_RESAMPLES)
        needed = lead_needed(paired.spread, self.confidence)
        trusted = beats_start(paired.gain, paired.share_ahead, self.confidence)
        return (
            self.start_auc + paired.gain,
            paired.share_ahead,
            trusted,
            {} if needed is None else {"lead_needed": round(needed, 4)},
        )

    def record(self, run) -> None:
        """Say which weights the run ends with, in the output and in run.json (``kept``)."""
        common = {
            "start": self.start,
            "start_valid_macro_auc": round(self.start_auc, 4),
            "monitor": "valid macro ROC-AUC",
            "confidence": self.confidence,
            "epochs": [{**epoch, "valid_macro_auc": round(epoch["valid_macro_auc"], 4)} for epoch in self.epochs],
            **({"wise_ft_blend": self.blend} if self.blend else {}),
        }
        if self.best_from is not None:
            kept = {"from": self.best_from, "valid_macro_auc": round(self.best_auc, 4)}
            ahead = "" if self.best_share is None else f", ahead of it in {self.best_share:.0%} of valid resamples"
            print(
                f"keep-best: {self.best_from} (valid macro AUC {self.best_auc:.4f}; the start had "
                f"{self.start_auc:.4f}{ahead})"
            )
        else:
            kept = {"from": self.start, "valid_macro_auc": round(self.start_auc, 4)}
            what, judged = ("the WiSE-FT blend", [self.blend]) if self.blend else ("its best epoch", self.epochs)
            best = max(judged, key=lambda e: e["valid_macro_auc"], default=None)
            if best is None or best["valid_macro_auc"] <= self.start_auc:
                why = "no epoch scored above it on valid" if not self.blend else "the WiSE-FT blend scored no higher"
            else:
                why = (
                    f"{what}'s gain (+{best['valid_macro_auc'] - self.start_auc:.4f}) is within the noise of "
                    f"{len(self.targets)} valid images (ahead in "
                    f"{share_text(best['share_ahead_of_start'], self.confidence)} of resamples, "
                    f"{self.confidence:.0%} needed{_lead(best)})"
                )
            start = f"{self.start} (valid macro AUC {self.start_auc:.4f})"
            print(f"keep-best: the run ends where it started, {start}: {why}")
        run.update(kept={**kept, **common})


def _lead(judged: dict) -> str:
    """The lead the noise test needed from an epoch (or blend), where it could say."""
    needed = judged.get("lead_needed")
    return "" if needed is None else f": a lead of about +{needed:.3f} on these images"
