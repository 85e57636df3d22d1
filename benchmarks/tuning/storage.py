"""A study's Optuna state: a journal file in the study's folder (no database server; the folder is on the shared
filesystem a cluster needs anyway), the pruner every process rebuilds the same way, and the seeded sampler.

The sampler is rebuilt before each proposal from (seed, trials finished, slot in the batch), so what it proposes
depends only on the study's finished trials, never on how many processes ran it or whether it was resumed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

JOURNAL = "journal.log"
# Median stopping (Golovin et al. 2017, Google Vizier): a trial whose valid macro AUC after an epoch is below the
# median of the finished trials' at the same epoch stops there. Not before 3 trials have finished, and never after
# the first epoch (one-cycle and warm-up schedules dip early).
PRUNE_AFTER_TRIALS = 3
PRUNE_WARMUP_EPOCHS = 1


def open_study(study_dir: Path, name: str, *, create: bool = False):
    """The study in ``study_dir/journal.log`` (created when ``create``), with the suite's pruner."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the tuner prints its own one line per trial
    storage = JournalStorage(JournalFileBackend(str(study_dir / JOURNAL)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=PRUNE_WARMUP_EPOCHS)
    if create:
        return optuna.create_study(
            study_name=name, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
        )
    return optuna.load_study(study_name=name, storage=storage, pruner=pruner)


def startup_trials(budget: int) -> int:
    """Random proposals before TPE models the results: half the budget, at least 2 and at most Optuna's 10."""
    return max(2, min(10, budget // 2))


def sampler_for(seed: int, finished: int, slot: int, budget: int, kind: str = "tpe"):
    """Optuna's seeded sampler for the proposal in ``slot`` of the batch after ``finished`` trials."""
    import optuna

    digest = hashlib.sha256(f"{seed}/{finished}/{slot}".encode()).digest()
    proposal_seed = int.from_bytes(digest[:4], "little")
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=proposal_seed)
    return optuna.samplers.TPESampler(seed=proposal_seed, n_startup_trials=startup_trials(budget))
