"""Tuning commands: an equal, declared search budget for a family on the user's dataset, and the expected-max
curves that say how a comparison depends on that budget."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.errors import BenchmarkError

TUNE_DESCRIPTION = """\
Tune one family on DATASET with a declared budget, the same for every family you compare.

Each trial is an ordinary run of the family's own command (in RESULTS/tuning/STUDY/trials/), with the knobs of the
family's search space set by Optuna's seeded TPE sampler (--sampler random: independent draws) and the rest from
--preset. A trial reports its valid macro AUC after every epoch, and the median pruner stops one that falls below
the median of the finished trials at the same epoch (not before 3 trials have finished, never at a first epoch).
Trial 0 is the preset itself (fastai and Keras: --preset's values for every knob of the space; by default "small"
on under 1,000 training images, chosen on small development draws, else "quick"), and it is the bar:
another trial is chosen only if it beats trial 0 in 95% of paired resamples of the valid images (the trainers'
keep-best rule, one level up), and then the one of those with the best valid macro AUC: the best of 16 noisy valid
scores is partly the luckiest, and can end below the default on test (docs/tuning.md). Selection reads
valid only; the chosen trial is promoted into RESULTS as the family's tuned run (preset "tuned"; run.json records
the study and why it was chosen), which the leaderboard, compare and the report show like any run. Its test score is
its one test evaluation that counts. The linear probe has no preset trial (its default already picks C on valid):
its best valid macro AUC is chosen.

Budget: --trials N finished trials (pruned and failed ones count), or --budget-seconds S of the study's wall time if
that comes first. Give every family the same budget: equal trials for a fair search, or equal seconds for equal
compute. The same command again resumes the study (its folder name is a digest of its settings): finished trials
never run again, a trial that was running when the study was killed runs again with the same values, a larger
--trials extends it, and a smaller one chooses among its first trials as if it had stopped there. Proposals come in
batches of --max-parallel trials told in order, so a seed gives the same study here, on Ray and after a resume (with
the same --max-parallel and --cpus-per-trial).

Small data: with --folds K each trial trains on K label-stratified folds of train + valid (fold i held out as its
valid, the test split untouched) and scores the mean of the K valid macro AUCs, so the choice rests on every train +
valid image instead of one small valid split (75 images on 300 photos cannot tell a +0.02 gain from noise). Each
trial costs K runs; the pruner watches the first fold. The trainers' keep-best is off in such a study (the folds
choose instead), and the chosen values are trained once more on the dataset's own split: that run is promoted.
Folds mix train and valid images: where the splits keep instances apart (StampScenes' stamps, a dataset.json
"split_groups" entry) the fold score rewards memorising them, and tune warns. --group-folds keeps each instance in
one fold where the dataset records them (objects.jsonl: image, stamp, label), at the cost of training images per fold
(an image whose instances span folds is held out nowhere); else choose on valid there.

The curve (python -m benchmarks tuning-curve): for k = 1..N, the best valid macro AUC a family is expected to reach
with k trials like these (Dodge et al. 2019; the unbiased estimator), and the test score of the trial valid picks.
Where two families' curves cross, which one wins depends on the budget, and the verdict says so.
"""


def add_commands(commands) -> None:
    p = commands.add_parser(
        "tune",
        help="tune a family's settings on a dataset with a declared budget (Optuna; locally or on Ray)",
        description=TUNE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", type=Path, nargs="?", help="dataset folder (labels.csv + images/)")
    p.add_argument("--family", help="what to tune: fastai, keras or linear_probe (see --list-spaces)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--trials", type=int, default=16, help="the budget in finished trials (default 16)")
    p.add_argument("--budget-seconds", type=float, default=None, help="stop proposing after this much wall time")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed and every trial's training seed")
    p.add_argument("--backbone", default=None, help="lite0 (default), lite1 or lite2")
    p.add_argument("--img-size", type=int, default=None, help="every trial's image size (default: the backbone's)")
    p.add_argument(
        "--preset",
        default=None,
        help="what knobs outside the space start from, and trial 0 (default: small under 1,000 training images, "
        "else quick)",
    )
    p.add_argument(
        "--fix", nargs="+", default=[], metavar="NAME=VALUE", help="hold knobs at one value, e.g. --fix epochs=1"
    )
    p.add_argument("--sampler", choices=["tpe", "random"], default="tpe", help="tpe (default) or random search")
    p.add_argument("--no-prune", dest="prune", action="store_false", help="let every trial run all its epochs")
    p.add_argument(
        "--folds",
        type=int,
        default=1,
        help="choose on K-fold cross-validation over train + valid (K runs per trial; for small datasets); default 1: "
        "on the dataset's valid split",
    )
    p.add_argument(
        "--group-folds",
        action="store_true",
        help="with --folds: keep each object instance (StampScenes' stamps, from objects.jsonl) in one fold, as the "
        "splits do; costs training images per fold",
    )
    p.add_argument(
        "--soup",
        action="store_true",
        help="after the study, average the chosen trial's weights with the other trials' where valid macro AUC does "
        "not drop (a greedy model soup; fastai and Keras, not with --folds) and promote the soup",
    )
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="local child processes, or Ray")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray started here)")
    p.add_argument("--max-parallel", type=int, default=1, help="trials at once (default 1: 2 cores fit one)")
    p.add_argument(
        "--cpus-per-trial", type=float, default=None, help="threads (and Ray CPUs) per trial (default: cores/parallel)"
    )
    p.add_argument("--list-spaces", action="store_true", help="print every family's search space and exit")
    p.set_defaults(handler=cmd_tune)
    p = commands.add_parser(
        "tuning-curve",
        help="expected best valid (and test) macro AUC vs number of trials, per tuned family, with the verdict",
        description="For every family tuned on DATASET (RESULTS/tuning/*/study.json; studies that differ only by "
        "seed are pooled): the expected best valid macro AUC with k trials, k = 1..N, the expected test macro AUC of "
        "the trial valid picks, 95%% bootstrap bands over trials and valid images (each trial rescored on the same "
        "resampled valid images), and for each pair of families whether the winner depends on the budget (a leader "
        "only where the band of the paired difference excludes 0).",
    )
    p.add_argument("dataset", type=Path, nargs="?", default=None, help="dataset folder (default: every study)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--html", type=Path, default=None, help="also write the chart (plotly HTML) here")
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="also write the results page (studies, curves, verdicts, tuned runs against the bar and the presets on "
        "test), e.g. docs/tuning-results.md; needs DATASET",
    )
    p.set_defaults(handler=cmd_tuning_curve)


def cmd_tune(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.models.backbones import DEFAULT_BACKBONE
    from benchmarks.models.registry import family_of, tunable_families
    from benchmarks.models.search_space import parse_fixed
    from benchmarks.tuning.settings import Budget, StudySettings, check_settings, default_preset
    from benchmarks.tuning.study import run_study

    if args.list_spaces:
        for family in tunable_families():
            print(f"{family.kind}:")
            for knob in family.search_space:
                print(f"  {knob.describe()}")
        return
    if args.dataset is None or args.family is None:
        raise BenchmarkError("tune needs a DATASET folder and --family (fastai, keras, linear_probe)")
    family = family_of(args.family)
    if family is None or not family.search_space:
        names = ", ".join(f.kind for f in tunable_families())
        raise BenchmarkError(f"--family {args.family}: cannot be tuned; choose one of: {names}")
    if args.trials < 1:
        raise BenchmarkError(f"--trials {args.trials}: the budget needs at least one trial")
    if args.budget_seconds is not None and args.budget_seconds <= 0:
        raise BenchmarkError(f"--budget-seconds {args.budget_seconds}: must be positive")
    if args.max_parallel < 1:
        raise BenchmarkError(f"--max-parallel {args.max_parallel}: at least 1")
    if args.soup and not family.souper:
        raise BenchmarkError(f"--soup: {family.kind} has no fine-tuned weights to average; soups are for fastai, keras")
    if args.soup and args.folds > 1:
        raise BenchmarkError("--soup: a cross-validated study's trials are fold models; choose on valid to soup them")
    # the default backbone named or not is one study (a grid cell names it, a user may not)
    backbone = None if args.backbone == DEFAULT_BACKBONE else args.backbone
    check_settings(family, backbone, args.preset, args.sampler)
    dataset = load_dataset(args.dataset)
    preset = args.preset or default_preset(family, dataset)
    if args.group_folds and args.folds < 2:
        raise BenchmarkError("--group-folds: give --folds K (2 or more) too; it says how the folds are made")
    if args.folds != 1:
        import sys

        from benchmarks.data.folds import check_folds, grouped_splits, instance_groups

        check_folds(dataset, args.folds)
        kept_apart = grouped_splits(dataset)
        if kept_apart and not args.group_folds:
            remedy = (
                "add --group-folds to keep each instance in one fold, or choose on its own valid split"
                if instance_groups(dataset)
                else "its own valid split is the honest one to choose on"
            )
            print(
                f"warning: {dataset.root}'s splits keep {kept_apart} apart and plain folds cannot: fold "
                "valid images share them with fold train, so the fold score rewards memorising them (docs/tuning.md, "
                f"'Small data'); {remedy}",
                file=sys.stderr,
            )
    cpus = args.cpus_per_trial or max(1, (os.cpu_count() or 1) // args.max_parallel)
    settings = StudySettings(
        dataset=dataset,
        family=family,
        seed=args.seed,
        backbone=backbone,
        preset=preset,
        img_size=args.img_size,
        fixed=parse_fixed(family.search_space, args.fix, family.kind),
        sampler=args.sampler,
        prune=args.prune,
        cpus=cpus,
        folds=args.folds,
        group_folds=args.group_folds,
    )
    run = run_study(
        settings,
        Budget(args.trials, args.budget_seconds),
        args.results,
        executor=args.executor,
        parallel=args.max_parallel,
        address=args.address,
        soup=args.soup,
    )
    from benchmarks.evaluation.results import read_metrics

    overall = (read_metrics(run) or {}).get("overall", {})
    soup = run.info.get("soup")
    if soup:
        print(
            f"soup of trial(s) {', '.join(map(str, run.info['study']['soup_trials']))}, valid macro AUC "
            f"{soup['valid_macro_auc']:.4f}"
        )
    print(
        f"tuned {family.title}: trial {run.info['study']['trial']} chosen on {settings.selection} (macro AUC "
        f"{run.info['study']['valid_macro_auc']:.4f}); promoted to {run.path}, test macro AUC "
        f"{overall.get('macro_roc_auc', float('nan')):.3f} (its one test evaluation)"
    )


def cmd_tuning_curve(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.tuning.records import band_note, curve_table, family_curves, read_studies, verdicts

    if args.markdown and not args.dataset:
        raise BenchmarkError("--markdown: name the DATASET the page is about")
    dataset = load_dataset(args.dataset) if args.dataset else None
    fingerprint = dataset.fingerprint if dataset else None
    studies, skipped = read_studies(args.results, fingerprint)
    for line in skipped:
        print(f"skipped: {line}")
    curves = family_curves(studies, dataset)
    if not curves:
        raise BenchmarkError(f"{args.results}/tuning: no tuning study with a finished trial; run benchmarks tune first")
    import pandas as pd

    for curve in curves:
        seeds = sorted(s.record["settings"]["seed"] for s in curve.studies)
        print(
            f"\n{curve.title}: {curve.trials} finished trials ({curve.complete} complete) from seeds {seeds}; "
            f"budget per study: {curve.budget}"
        )
        print(pd.DataFrame(curve_table(curve)).to_string(index=False))
    print(
        "\nexpected best valid macro AUC with k trials (k trials like these; exact for --sampler random); test: the "
        f"expected test macro AUC of the trial valid picks; [{band_note(curves)}]"
    )
    for line in verdicts(curves):
        print(f"- {line}")
    if args.html:
        from benchmarks.atomic import atomic_write
        from benchmarks.evaluation.charts import expected_max_overlay

        figure = expected_max_overlay({curve.title: curve.curves for curve in curves})
        atomic_write(args.html, lambda tmp: figure.write_html(tmp, include_plotlyjs=True), suffix=".html")
        print(f"chart written: {args.html}")
    if args.markdown:
        from benchmarks.atomic import atomic_write_text
        from benchmarks.tuning.page import render_tuning_page

        command = (
            f"python -m benchmarks tuning-curve {args.dataset} --results {args.results} --markdown {args.markdown}"
        )
        atomic_write_text(args.markdown, render_tuning_page(args.results, dataset, command))
        print(f"page written: {args.markdown}")
