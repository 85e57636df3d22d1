"""A greedy model soup (Wortsman et al., ICML 2022, "Model soups"): the weights of several runs of one family on one
dataset averaged into one model. Runs fine-tuned from the same start (LP-FT's probe head on the same pretrained body)
stay in one basin, so their average is itself a good model, often better than each, and it serves at the cost of
one. Greedy: the runs are tried in the order given (the study's chosen trial first, then by valid macro AUC) and one
joins only where the soup's valid macro AUC does not drop; a run with the same weights as one already in the soup
(trials that keep-best returned to the same start) is left out rather than counted twice. Test is never read before
the soup is made.

Each family supplies how to read, set and save its weights (``fastai_model/soup.py``, ``keras_model/soup.py``); the
order, the rule, the run and its scoring are shared here.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.data.dataset import Dataset, load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError, interruptible, run_cli
from benchmarks.evaluation.metrics import macro_auc
from benchmarks.evaluation.results import EVAL_SPLITS, Run, create_run, load_run, recording
from benchmarks.models.registry import family_of, load_predictor_class

from .lifecycle import close_run, score_run

RULE = "greedy: a run joins only where the soup's valid macro AUC does not drop (Wortsman et al. 2022)"
BATCH = 32  # images per predict call


@dataclass(frozen=True)
class SoupKit:
    """What a family supplies: its kind, and how to read, set and save the weights of its served predictor."""

    kind: str
    weights: Callable[[object], list[np.ndarray]]
    set_weights: Callable[[object, list[np.ndarray]], None]
    save: Callable[[object, Path], Path]  # the soup's serving artifact in a run folder; returns its main file


def average(sums: list[np.ndarray], count: int, like: list[np.ndarray]) -> list[np.ndarray]:
    """The mean of ``count`` runs' weights from their float64 sums, in each weight's own dtype; integer tensors
    (BatchNorm's batch counters) keep the first run's values."""
    return [
        (total / count).astype(first.dtype) if np.issubdtype(first.dtype, np.floating) else first
        for total, first in zip(sums, like)
    ]


def weights_digest(weights: list[np.ndarray]) -> str:
    """What makes two runs' weights the same model: a hash of every tensor's bytes, in order."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def predict(predictor, images: list) -> np.ndarray:
    return np.concatenate([np.asarray(predictor.predict(images[i : i + BATCH])) for i in range(0, len(images), BATCH)])


def make_soup(kit: SoupKit, dataset: Dataset, results: Path, runs: list[Run]) -> Run:
    """The greedy soup of ``runs`` (the first always in it) as a new run in ``results``, scored by the shared
    evaluator. Where no other run joined it is a soup of one: the first run's model under its own name, so a soup
    is always its own run (a tuned model with a soup is another model than the one without)."""
    predictor_class = load_predictor_class(family_of(kit.kind))
    base = predictor_class(runs[0].path)
    targets = dataset.targets("valid")
    valid = [open_rgb(path) for path in dataset.image_paths("valid")]
    first = kit.weights(base)
    sums, count = [w.astype(np.float64) for w in first], 1
    best = macro_auc(targets, predict(base, valid))
    steps = [{"run": runs[0].run_id, "valid_macro_auc": round(best, 5), "joined": True}]
    print(f"soup: {runs[0].run_id} first, valid macro AUC {best:.4f}", flush=True)
    # Trials that keep-best returned to the same start hold the same weights: one copy each, or the mean would
    # weigh that model once per copy.
    in_soup = {weights_digest(first): runs[0].run_id}
    for run in runs[1:]:
        weights = kit.weights(predictor_class(run.path))
        if [w.shape for w in weights] != [w.shape for w in first]:
            steps.append({"run": run.run_id, "joined": False, "why": "other weight shapes"})
            print(f"soup: {run.run_id} left out: its weights have other shapes", flush=True)
            continue
        same = in_soup.get(digest := weights_digest(weights))
        if same:
            steps.append({"run": run.run_id, "joined": False, "why": f"the same weights as {same}"})
            print(f"soup: {run.run_id} left out: the same weights as {same}, already in the soup", flush=True)
            continue
        trial = [total + w for total, w in zip(sums, weights)]
        kit.set_weights(base, average(trial, count + 1, first))
        score = macro_auc(targets, predict(base, valid))
        joined = score >= best
        steps.append({"run": run.run_id, "valid_macro_auc": round(score, 5), "joined": joined})
        print(f"soup: + {run.run_id}: valid macro AUC {score:.4f} ({'joins' if joined else 'left out'})", flush=True)
        if joined:
            sums, count, best = trial, count + 1, score
            in_soup[digest] = run.run_id
    if count == 1:
        print(f"soup: no other run joined; the soup is {runs[0].run_id}'s model alone")
    kit.set_weights(base, average(sums, count, first))
    return _soup_run(kit, base, dataset, results, runs, steps, best)


def _soup_run(kit: SoupKit, predictor, dataset: Dataset, results: Path, runs: list[Run], steps, best) -> Run:
    """The soup written as an ordinary run: the first run's settings, its ingredients in ``soup``, the averaged
    model as its serving artifact, and valid and test scored by that served model (the served check repeats it)."""
    base = runs[0]
    run = create_run(results, kind=kit.kind, dataset=dataset, backbone=base.backbone, params=base.params)
    print(f"run: {run.path}")
    with recording(run):
        joined = [s["run"] for s in steps if s["joined"]]
        run.update(soup={"rule": RULE, "ingredients": joined, "valid_macro_auc": round(best, 5), "tried": steps})
        artifact = kit.save(predictor, run.path)
        started = time.monotonic()
        scores = predict(predictor, [open_rgb(path) for path in dataset.image_paths(EVAL_SPLITS)])
        predict_s = time.monotonic() - started
        train_s = sum(float(r.timings.get("train_s") or 0.0) for r in runs if r.run_id in joined)
        close_run(run, dataset, scores, artifact, train_s=train_s, predict_s=predict_s)
    return score_run(run, dataset)


def check_ingredients(kind: str, dataset: Dataset, runs: list[Run]) -> None:
    """Every ingredient a finished run of this family on this dataset, with the dataset's labels."""
    for run in runs:
        if run.kind != kind or run.status != "done":
            raise BenchmarkError(f"{run.path}: a soup needs finished {kind} runs (this is {run.kind}, {run.status})")
        if run.fingerprint != dataset.fingerprint or run.labels != dataset.labels:
            raise BenchmarkError(f"{run.path}: was trained on another dataset than {dataset.root}; soup runs of one")


def soup_main(kit: SoupKit, argv: list[str] | None = None) -> int:
    """``python -m <family>.soup --dataset D --results R RUN RUN...``: the greedy soup of the runs, first run first."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {kit.kind}_model.soup",
        description=f"Average the weights of finished {kind_title(kit.kind)} runs on one dataset into one model "
        f"(a greedy soup: {RULE}). The first RUN is always in the soup; the rest are tried in the order given. "
        "`benchmarks tune --soup` calls this with the study's chosen trial first and the others by valid macro AUC.",
    )
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset the runs were trained on")
    parser.add_argument("--results", type=Path, default=Path("results"), help="where the soup run goes")
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders, the first always in the soup")
    args = parser.parse_args(argv)
    interruptible()

    def body():
        dataset = load_dataset(args.dataset)
        runs = [load_run(path) for path in args.runs]
        check_ingredients(kit.kind, dataset, runs)
        make_soup(kit, dataset, args.results, runs)

    return run_cli(body)


def kind_title(kind: str) -> str:
    family = family_of(kind)
    return family.title if family else kind
