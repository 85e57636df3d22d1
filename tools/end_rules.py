"""How a fine-tuning run should end, decided on development data: each epoch's scores kept, every end rule replayed.

A trainer ends on one model (its last epoch, keep-best's choice at some confidence, or a WiSE-FT blend), so
comparing those rules would cost one run each. ``record`` runs a trainer once with its keep-best callback watched:
the LP-FT start and every epoch's weights are kept in memory, and after training each (and the WiSE-FT blends of
the start and the last epoch, one per share in ``BLENDS``) scores the valid and test images, written to one
``.npz``. ``replay`` then scores every rule from those files with the shared evaluator (macro AUC; keep-best's own
paired resamples): the gain over the start on test, per recipe and per dataset. Replay judges the fp32 scores a run
serves; keep-best judged the epochs in the training precision (bf16 on some CPUs), so its valid figures can differ in
the third decimal. The ``small`` presets were chosen this way on development draws, never on the dataset they are
reported on (docs/results.md, 2026-12-07, second and third sessions).

    python -m tools.end_rules record keras dumps/k8-s6-0.npz -- --dataset data/stampscenes-450-s6 --preset quick \
        --epochs 8 --seed 0 --results results/devsel
    python -m tools.end_rules replay dumps/*.npz        # files named RECIPE-DATASET-SEED.npz
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write
from benchmarks.errors import BenchmarkError, run_cli

CONFIDENCES = (0.0, 0.5, 0.8, 0.95)  # keep-best's --keep-best-confidence values replayed
BLENDS = (0.25, 0.5, 0.75)  # WiSE-FT's share of the last epoch, as --wise-ft S; replay reads whichever a record holds
START = "start"
DUMP_NAME = re.compile(r"(?P<recipe>[^-]+)-(?P<dataset>.+)-(?P<seed>\d+)$")
BLEND_NAME = re.compile(r"wise-ft (?P<share>[\d.]+) of the last epoch$")


def blend_name(share: float) -> str:
    return f"wise-ft {share:g} of the last epoch"


def record(family: str, dump: Path, trainer_argv: list[str]) -> int:
    """Run the family's trainer with keep-best watched; write the start's, each epoch's and the blend's valid and
    test scores to ``dump``."""
    states: list[tuple[str, object]] = []
    if family == "keras":
        import keras_model.callbacks as callbacks
        import keras_model.train as trainer

        def weights(model):
            return model.get_weights()

        def put(model, state):
            model.set_weights(state)

        def start_of(callback, args):
            return [w.copy() for w in callback.start_weights]

        def mix(start, last, share):
            return callbacks.blend_weights(start, last, share)

        epoch_hook, model_of, epoch_of = "on_epoch_end", (lambda cb: cb.model), (lambda cb, args: args[0])
    elif family == "fastai":
        import fastai_model.callbacks as callbacks
        import fastai_model.train as trainer

        def weights(learn):
            return {k: v.detach().clone() for k, v in learn.model.state_dict().items()}

        def put(learn, state):
            learn.model.load_state_dict(state)

        def start_of(callback, args):
            return weights(args[0])  # the learner: fastai hands it to the callback only once it joins

        def mix(start, last, share):
            mixed = {k: v.clone() for k, v in last.items()}
            callbacks.blend_into(mixed, start, share)
            return mixed

        epoch_hook, model_of, epoch_of = "after_epoch", (lambda cb: cb.learn), (lambda cb, args: cb.epoch)
    else:
        raise BenchmarkError(f"{family!r}: record keras or fastai (the trainers with keep-best)")
    keeper = callbacks.KeepBestCallback
    opened, ended = keeper.__init__, getattr(keeper, epoch_hook)

    def watched_init(self, *args, **kwargs):
        opened(self, *args, **kwargs)
        states.append((START, start_of(self, args)))

    def watched_epoch(self, *args, **kwargs):
        ended(self, *args, **kwargs)
        states.append((f"epoch {epoch_of(self, args)}", weights(model_of(self))))

    scored = trainer.predict_eval_splits

    def predict_every_state(model, dataset, *rest):
        if not states:  # keep-best did not run: nothing to replay (``record`` says so)
            return scored(model, dataset, *rest)
        final = weights(model)
        start, last = states[0][1], states[-1][1]
        states.extend((blend_name(share), mix(start, last, share)) for share in BLENDS)
        scores = []
        for _, state in states:
            put(model, state)
            scores.append(scored(model, dataset, *rest)[0])
        put(model, final)
        write_dump(dump, [name for name, _ in states], np.stack(scores), dataset)
        return scored(model, dataset, *rest)

    keeper.__init__, trainer.predict_eval_splits = watched_init, predict_every_state
    setattr(keeper, epoch_hook, watched_epoch)
    code = trainer.main(trainer_argv)
    if code == 0 and not dump.exists():
        raise BenchmarkError(
            f"{dump}: nothing recorded: keep-best did not run (--no-keep-best, a resumed run, or a valid label "
            "without positives); record a fresh run with keep-best on"
        )
    return code


def write_dump(dump: Path, names: list[str], scores: np.ndarray, dataset) -> None:
    from benchmarks.evaluation.results import EVAL_SPLITS

    rows = dataset.rows(EVAL_SPLITS)
    arrays = {
        "names": np.array(names),
        "scores": scores,
        "split": np.asarray(rows["split"]).astype(str),
        "targets": dataset.targets(EVAL_SPLITS),
    }
    dump.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dump, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
    print(f"end rules: {len(names)} models' scores -> {dump}")


def end_rules(dump: dict) -> dict[str, float]:
    """Test macro AUC of the model each end rule keeps, minus the start's: the last epoch, the epoch with the best
    valid score, keep-best at each confidence, and each WiSE-FT blend with and without keep-best's judgement."""
    from benchmarks.evaluation.metrics import macro_auc
    from benchmarks.evaluation.resampling import paired_macro_auc_gain
    from benchmarks.training.keep_best import KEEP_BEST_RESAMPLES, beats_start

    names, scores, targets = list(dump["names"]), dump["scores"], dump["targets"]
    valid, test = dump["split"] == "valid", dump["split"] == "test"
    valid_auc = [macro_auc(targets[valid], s[valid]) for s in scores]
    test_auc = [macro_auc(targets[test], s[test]) for s in scores]
    ahead = [
        paired_macro_auc_gain(targets[valid], s[valid], scores[0][valid], resamples=KEEP_BEST_RESAMPLES).share_ahead
        for s in scores
    ]
    epochs = [i for i, name in enumerate(names) if name.startswith("epoch")]
    blends = {float(m["share"]): i for i, name in enumerate(names) if (m := BLEND_NAME.match(name))}

    def trusted(i: int, confidence: float) -> bool:
        return beats_start(valid_auc[i] - valid_auc[0], ahead[i], confidence)

    rules = {"last epoch": epochs[-1], "best valid epoch": max(epochs, key=valid_auc.__getitem__)}
    for confidence in CONFIDENCES:
        kept = [i for i in epochs if trusted(i, confidence)]
        rules[f"keep-best {confidence:g}"] = max(kept, key=valid_auc.__getitem__) if kept else 0
    for share, i in sorted(blends.items()):
        rules[f"blend {share:g}"] = i
        for confidence in CONFIDENCES:
            rules[f"blend {share:g}, keep-best {confidence:g}"] = i if trusted(i, confidence) else 0
    return {rule: test_auc[i] - test_auc[0] for rule, i in rules.items()}


def replay(dumps: list[Path]) -> str:
    """A markdown table: each recipe's mean test gain over its start per rule, overall and per dataset."""
    gains: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path in dumps:
        match = DUMP_NAME.match(path.stem)
        if not match:
            raise BenchmarkError(f"{path}: name it RECIPE-DATASET-SEED.npz (e.g. k8-s6-0.npz) so runs can be grouped")
        try:
            with np.load(path) as data:
                dump = {key: data[key] for key in ("names", "scores", "split", "targets")}
        except (OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(f"{path}: not an end-rules dump ({exc}); record it again") from None
        for rule, gain in end_rules(dump).items():
            gains[match["recipe"]][rule].append((match["dataset"], gain))
    lines = []
    for recipe, rules in gains.items():
        datasets = sorted({d for values in rules.values() for d, _ in values})
        runs = max(len(values) for values in rules.values())
        lines += [f"\n**{recipe}** ({runs} runs)\n", "| end rule | mean | " + " | ".join(datasets) + " |"]
        lines.append("|---" * (2 + len(datasets)) + "|")
        for rule, values in rules.items():
            per = [[g for d, g in values if d == dataset] for dataset in datasets]
            cells = " | ".join(f"{np.mean(g):+.4f}" if g else "—" for g in per)  # —: not recorded on that draw
            lines.append(f"| {rule} | {np.mean([g for _, g in values]):+.4f} | {cells} |")
    return "\n".join(lines).lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    trainer_argv: list[str] = []
    if "--" in argv:
        argv, trainer_argv = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(prog="python -m tools.end_rules", description=__doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run a trainer once, keeping every epoch's scores (its flags after --)")
    rec.add_argument("family", choices=("keras", "fastai"))
    rec.add_argument("dump", type=Path, help="the .npz to write, named RECIPE-DATASET-SEED.npz")
    rep = commands.add_parser("replay", help="each end rule's test gain over the start, from recorded runs")
    rep.add_argument("dumps", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "record":
        return run_cli(lambda: record(args.family, args.dump, trainer_argv)) or 0
    return run_cli(lambda: print(replay(args.dumps)))


if __name__ == "__main__":
    sys.exit(main())
