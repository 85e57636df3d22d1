"""A tuning study: Optuna proposes, trials run as ordinary runs (here or on Ray), valid macro AUC decides, and the
chosen trial's run is promoted into the results folder as the family's tuned run.

Proposals come in batches of ``parallel`` trials, and a batch is told to the study in proposal order only once all
of it has finished: what is proposed next depends on the finished trials alone, so the same seed gives the same
study on one core, on many, on Ray or resumed after a kill. A trial that was running when its study was killed is
run again with the same values (its earlier attempt is kept as failed, "requeued"); finished trials never run again.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write_json
from benchmarks.data.folds import write_folds
from benchmarks.errors import BenchmarkError, RunError, interruptible
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.results import Run, load_run, report_run
from benchmarks.models.search_space import describe_values, space_digest
from benchmarks.runner.cells import run_cell

from .executors import trial_executor
from .records import STUDY_JSON
from .selection import START, Choice, choice_line, choice_record, choose, complete_within
from .settings import Budget, StudySettings, study_folder
from .soup_step import SOUP_ATTR, study_soup
from .storage import open_study, sampler_for
from .trial import TrialTask

REQUEUED = "requeued"
FAILURES_BEFORE_GIVING_UP = 3  # a study whose first trials all failed stops (each would fail the same way)
RECORDED = ("valid", "test", "seconds", "run", "runs", "fold_valid", "error")  # a trial's outcome, in the journal
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}  # Optuna's, in study.json


def distributions(settings: StudySettings) -> dict:
    """The space's knobs (minus the fixed ones) as Optuna distributions."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made = {}
    for knob in settings.knobs:
        if knob.kind == "choice":
            made[knob.option] = CategoricalDistribution(list(knob.choices))
        elif knob.kind == "int":
            made[knob.option] = IntDistribution(int(knob.low), int(knob.high))
        else:
            made[knob.option] = FloatDistribution(knob.low, knob.high, log=knob.kind == "log")
    return made


def propose(study, settings: StudySettings, space: dict):
    """A new trial with a value for every knob that applies to it: the unconditional knobs at once, then each
    conditional one only where its condition holds (Optuna's define-by-run; TPE models each knob over the trials
    that drew it)."""
    conditional = [knob for knob in settings.knobs if knob.only_with]
    trial = study.ask({name: d for name, d in space.items() if name not in {k.option for k in conditional}})
    for knob in conditional:
        if knob.applies({**settings.fixed, **trial.params}):
            _suggest(trial, knob.option, space[knob.option])
    return trial


def _suggest(trial, name: str, distribution) -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        trial.suggest_categorical(name, distribution.choices)
    elif isinstance(distribution, IntDistribution):
        trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    else:
        trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)


def run_study(
    settings: StudySettings,
    budget: Budget,
    results: Path,
    *,
    executor: str = "local",
    parallel: int = 1,
    address: str | None = None,
    soup: bool = False,
) -> Run:
    """Run (or resume) the study to its budget and return the promoted run of its chosen trial (``soup``: of the
    greedy soup made from it)."""
    from optuna.trial import TrialState

    interruptible()
    folder = study_folder(results, settings)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.folds > 1:
        made = write_folds(settings.dataset, folder / "folds", settings.folds, settings.seed, settings.group_folds)
        settings = replace(settings, fold_roots=tuple(d.root for d in made))
        held_out, trained = (round(np.mean([len(d.rows(s)) for d in made])) for s in ("valid", "train"))
        apart = ", each object instance in one fold" if settings.group_folds else ""
        print(
            f"{settings.folds} folds over train + valid{apart} (~{held_out} images held out and ~{trained} trained on "
            f"each): {folder / 'folds'}"
        )
    study = open_study(folder, settings.name, create=True)
    study.set_user_attr("settings", settings.identity())
    if settings.start and not study.trials:  # a new study: the preset first, the bar every other trial must clear
        study.enqueue_trial(settings.start, user_attrs={START: settings.preset or "default"})
    _requeue_orphans(study)
    space = distributions(settings)
    spent = float(study.user_attrs.get("wall_s", 0.0))
    print(f"study {folder} — {settings.family.title}, budget {budget.describe()}, seed {settings.seed}", flush=True)
    with trial_executor(executor, parallel, address) as run_batch:
        while not budget.spent(len(_finished(study)), spent):
            started = time.monotonic()
            slots = range(_batch_size(study, budget, parallel))
            tasks = [_propose(study, folder, settings, space, slot, budget) for slot in slots]
            outcomes = run_batch(tasks)
            for task, outcome in zip(tasks, outcomes):
                if outcome["state"] != "interrupted":  # an interrupted trial stays running: resuming runs it again
                    _tell(study, task, outcome, budget)
            spent += time.monotonic() - started
            study.set_user_attr("wall_s", round(spent, 2))
            write_record(folder, study, settings, budget, parallel)
            if any(outcome["state"] == "interrupted" for outcome in outcomes):
                print(
                    f"a trial was stopped from outside (Ctrl-C or a signal): the study keeps its "
                    f"{len(_finished(study))} finished trials; run the same command to resume",
                    file=sys.stderr,
                )
                raise KeyboardInterrupt
            finished = _finished(study)
            pace = budget.pace([t.user_attrs.get("seconds", 0.0) for t in finished], spent, parallel)
            if pace:
                print(pace, flush=True)
            if len(finished) >= min(budget.trials, max(FAILURES_BEFORE_GIVING_UP, parallel)) and all(
                t.state == TrialState.FAIL for t in finished
            ):  # every trial so far failed: a setup problem (a bad --fix, a broken install), not bad luck
                first = next((t for t in finished if t.user_attrs.get("error")), finished[0])
                raise BenchmarkError(
                    f"{folder}: no trial finished; trial {first.number}: {first.user_attrs.get('error')} (log: "
                    f"{first.user_attrs.get('log')})"
                )
    chosen = _chosen(study, folder, budget)
    print(choice_line(chosen), flush=True)
    made = study_soup(study, folder, settings, complete_within(_finished(study), budget), chosen) if soup else None
    promoted = promote(folder, chosen, settings, budget, made)
    write_record(folder, study, settings, budget, parallel, promoted=promoted.run_id)
    return promoted


def _requeue_orphans(study) -> None:
    """Trials left running by a killed study: failed (marked requeued), their values proposed again first."""
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        optuna.trial.Trial(study, frozen._trial_id).set_user_attr(REQUEUED, True)
        study.tell(frozen.number, state=TrialState.FAIL)
        study.enqueue_trial(frozen.params, user_attrs={k: v for k, v in frozen.user_attrs.items() if k == START})
        print(f"trial {frozen.number} was running when the study stopped: its values run again", flush=True)


def _finished(study) -> list:
    """Trials that count against the budget: complete, pruned, or failed on their own (not requeued)."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=done) if not t.user_attrs.get(REQUEUED)]


def _batch_size(study, budget: Budget, parallel: int) -> int:
    """Requeued trials first, as a batch of their own; then ``parallel`` at a time, never past the budget."""
    from optuna.trial import TrialState

    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    left = budget.trials - len(_finished(study))
    return max(1, min(waiting or parallel, left))


def _propose(study, folder: Path, settings: StudySettings, space: dict, slot: int, budget: Budget) -> TrialTask:
    study.sampler = sampler_for(settings.seed, len(_finished(study)), slot, budget.trials, settings.sampler)
    trial = propose(study, settings, space)
    folds = settings.fold_cells(trial.params)
    return TrialTask(
        study_dir=folder,
        study_name=study.study_name,
        trial_id=trial._trial_id,
        number=trial.number,
        cell=folds[0] if folds else settings.cell(trial.params),
        epoch_metric=settings.family.epoch_metric,
        prune=settings.prune,
        other_folds=folds[1:],
    )


def _tell(study, task: TrialTask, outcome: dict, budget: Budget) -> None:
    import optuna
    from optuna.trial import TrialState

    trial = optuna.trial.Trial(study, task.trial_id)
    for key in ("run", "runs", "fold_valid", "valid", "test", "seconds", "log", "error"):
        if outcome.get(key) is not None:
            trial.set_user_attr(key, outcome[key])
    state = outcome["state"]
    if state == "complete":
        study.tell(trial, outcome["valid"])
    else:
        study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)
    if state == "complete":
        shown = f"valid macro AUC {outcome['valid']:.4f}"
    elif state == "pruned":
        shown = "stopped by the pruner (below the median of finished trials)"
    else:
        shown = f"failed: {outcome.get('error')}"
    done = f"[{len(_finished(study))}/{budget.trials}]"
    print(
        f"{done} trial {task.number} ({describe_values(trial.params)}): {shown} — {outcome['seconds']:.0f} s",
        flush=True,
    )


def _chosen(study, folder: Path, budget: Budget) -> Choice:
    chosen = choose(_finished(study), folder, budget)
    if chosen is None:
        raise BenchmarkError(f"{folder}: no trial finished, so nothing can be chosen; see its logs/")
    return chosen


def promote(folder: Path, chosen: Choice, settings: StudySettings, budget: Budget, soup: dict | None = None) -> Run:
    """The chosen trial's run (``soup``: the soup made from it) copied into the results
    folder (checkpoints left behind), named as the family's tuned model: ``preset`` tuned, the study's settings in
    ``params.tuning`` (so tuned runs of several seeds group as one model), the study itself in ``study``."""
    if soup:
        name = soup["run"]
    else:
        name = final_run(folder, chosen, settings) if settings.folds > 1 else chosen.trial.user_attrs["run"]
    source = folder / "trials" / name
    target = folder.parent.parent / source.name
    if not target.exists():
        staging = target.with_name(f".{target.name}.promoting")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns("checkpoints"))
        staging.rename(target)
    run = load_run(target)
    identity = settings.identity()
    run.update(
        params={
            **run.params,
            "seed": settings.seed,  # the study's seed (the probe's trials take none of their own)
            "preset": "tuned",
            "tuning": {
                "budget": budget.describe(),
                "sampler": identity["sampler"],
                "pruner": "median" if settings.prune else "none",
                "fixed": identity["fixed"],
                "start_preset": identity["preset"],
                "space": space_digest(identity["space"]),
                # only where it is not valid: tuned runs chosen on valid keep grouping with the ones made before
                **({"selection": f"{settings.selection} over train + valid"} if settings.folds > 1 else {}),
                **({"soup": "greedy"} if soup else {}),  # a soup is another model than its chosen trial alone
            },
        },
        study={
            "name": settings.name,
            "folder": str(folder.relative_to(folder.parent.parent)),
            "trial": chosen.number,
            "chosen": chosen.trial.params,
            "valid_macro_auc": round(chosen.value, 4),
            "seed": settings.seed,
            **choice_record(chosen),
            **({"soup_trials": soup["trials"]} if soup else {}),
        },
    )
    report_run(run)
    return run


def final_run(folder: Path, chosen: Choice, settings: StudySettings) -> str:
    """A cross-validated study's chosen values trained once on the dataset's own train split (its valid tunes the
    thresholds, as for every run): the model that is promoted and scored on test. A resumed study finds it."""
    cell = settings.cell(chosen.trial.params)
    entry = run_cell(cell, folder / "trials", folder / "logs", name=f"final-{chosen.number:04d}")
    if entry["status"] != "done":
        raise BenchmarkError(
            f"{folder}: trial {chosen.number}'s values, trained on the dataset's own split, failed: "
            f"{entry.get('error')} (log: {entry['log']}); run the same command to try again"
        )
    return entry["run"]


def write_record(folder: Path, study, settings: StudySettings, budget: Budget, parallel: int, promoted=None) -> Path:
    """study.json: settings, budget and what was spent, every trial (values, state, valid and test macro AUC), the
    chosen one. Written after every batch, so a killed study's record is one batch old at worst."""
    from optuna.trial import TrialState

    trials = [_trial_record(t, folder) for t in study.trials if t.state != TrialState.WAITING]
    counted = [t for t in trials if t["state"] not in (REQUEUED, "running")]
    wall = float(study.user_attrs.get("wall_s", 0.0))
    trial_s = sum(t.get("seconds", 0.0) for t in trials)
    train_s = sum(t.get("train_s") or 0.0 for t in trials)
    chosen = choose(_finished(study), folder, budget)
    record = {
        "name": settings.name,
        "family": settings.family.kind,
        "title": settings.family.title,
        "dataset": {"name": settings.dataset.name, "fingerprint": settings.dataset.fingerprint},
        "settings": settings.identity(),
        "budget": {"trials": budget.trials, "seconds": budget.seconds, "described": budget.describe()},
        "spent": {
            "trials": len(counted),
            "wall_s": round(wall, 1),
            "trial_s": round(trial_s, 1),
            "train_s": round(train_s, 1),
        },
        # the share of the slots' wall time no trial process was running: proposing, the journal, batch waits
        "tuner_overhead": round(max(0.0, 1 - trial_s / (wall * parallel)), 4) if wall else None,
        # ...and no trainer was fitting: that plus each trial's process start, imports, LP-FT's head, predicting
        # valid and test and the evaluator (pruned trials count as not training: their fit was cut short)
        "not_training": round(max(0.0, 1 - train_s / (wall * parallel)), 4) if wall else None,
        "parallel": parallel,
        "machine": {k: v for k, v in environment().items() if k in ("cpu", "cpu_features", "cpu_count")},
        "trials": trials,
        "chosen": None if chosen is None else chosen.number,
        **({} if chosen is None else choice_record(chosen)),
        "promoted": promoted,
        **({"soup": study.user_attrs[SOUP_ATTR]} if SOUP_ATTR in study.user_attrs else {}),
    }
    return atomic_write_json(folder / STUDY_JSON, record)


def _trial_record(trial, folder: Path) -> dict:
    """One trial in study.json; a pruned trial's ``valid`` is the best value it reported before it was stopped (for a
    keep-best trial, what it would have ended on: trial.py), and a
    complete one's ``train_s`` the trainer's own fit time (its run's timings: the rest of the trial is overhead)."""
    record = {
        "number": trial.number,
        "state": REQUEUED if trial.user_attrs.get(REQUEUED) else STATES.get(trial.state.name, trial.state.name.lower()),
        "params": trial.params,
        **{k: trial.user_attrs[k] for k in RECORDED if k in trial.user_attrs},
        **({"start": trial.user_attrs[START]} if trial.user_attrs.get(START) else {}),
    }
    if record["state"] == "complete" and record.get("run"):
        try:
            runs = [load_run(folder / "trials" / name) for name in record.get("runs") or [record["run"]]]
            record["train_s"] = sum(run.timings.get("train_s") or 0.0 for run in runs)
        except RunError:
            pass  # a run folder was removed: the record keeps the rest
    if record["state"] == "pruned" and trial.intermediate_values:
        record["valid"] = round(max(trial.intermediate_values.values()), 5)
        record["epochs_run"] = len(trial.intermediate_values)
    return record
