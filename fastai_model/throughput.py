"""Training throughput of the fastai trainer against a plain PyTorch loop on the same model and data.

Both train the whole network (unfrozen) with the same backbone, image size, batch size, precision and
memory format, decoding the same training images; fastai adds its augmentation and callbacks, which is
exactly the overhead being measured. Prints one JSON object (used by ``python -m tools.bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback, CancelFitException
from fastai.optimizer import OptimWrapper
from fastai.vision.augment import RandTransform

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError, run_cli
from benchmarks.models.backbones import get_backbone, normalise, prepare_image
from benchmarks.training.options import throughput_parser

from .config import make_config
from .data import make_dataloaders
from .learner import build_learner, precision_mode


def stamp() -> float:
    """The time once the GPU has finished the work queued so far (its kernels run asynchronously)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


class BatchClock(Callback):
    """(epoch, timestamp) after each training batch; stops the fit after ``warmup + batches``."""

    def __init__(self, warmup: int, batches: int):
        self.warmup, self.batches, self.stamps = warmup, batches, []

    def after_batch(self):
        if self.training:
            self.stamps.append((self.epoch, stamp()))
            if len(self.stamps) >= self.warmup + self.batches:
                raise CancelFitException


def images_per_second(stamps: list[tuple[int, float]], warmup: int, bs: int) -> float:
    """Over the gaps between consecutive training batches of one epoch, after ``warmup`` batches: a small dataset
    is gone round more than once, and the valid pass and loader restart between epochs are not training."""
    gaps = [b - a for (ea, a), (eb, b) in zip(stamps[warmup - 1 : -1], stamps[warmup:], strict=True) if ea == eb]
    if not gaps:
        raise BenchmarkError(f"--bs {bs}: fewer than two batches an epoch; use a smaller batch or more images")
    return len(gaps) * bs / sum(gaps)


def fastai_throughput(
    dataset,
    backbone,
    config,
    warmup: int,
    batches: int,
    torch_optimizer: bool = False,
    augment: bool = True,
    profile: Path | None = None,
) -> float:
    """The trainer's learner (its augmentation, callbacks and optimizer); ``torch_optimizer``: the same AdamW by
    PyTorch (through fastai's ``OptimWrapper``) instead of fastai's per-parameter Python loop; ``augment=False``:
    without its batch augmentation (the casts and Normalize stay); ``profile``: PyTorch's profiler over the timed
    batches, its table of operators by self time written there (the figure returned is then slowed by it)."""
    learn = build_learner(
        make_dataloaders(dataset, backbone, config), backbone, config, path=Path("/tmp"), monitor_auc=False
    )
    if torch_optimizer:
        learn.opt_func = partial(OptimWrapper, opt=torch.optim.AdamW, betas=(0.9, 0.99), eps=1e-5)
    if not augment:
        learn.dls.train.after_batch.fs = learn.dls.train.after_batch.fs.filter(
            lambda t: not isinstance(t, RandTransform)
        )
    learn.unfreeze()
    clock = BatchClock(warmup, batches)
    epochs = math.ceil((warmup + batches) / len(learn.dls.train))  # a small dataset is gone round more than once
    profiler = torch.profiler.profile(activities=profiled_activities()) if profile else contextlib.nullcontext()
    with learn.no_bar(), learn.no_logging(), profiler:  # stdout carries only the JSON result
        learn.fit(epochs, 1e-4, cbs=clock)
    if profile:
        sort_by = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        profile.write_text(profiler.key_averages().table(sort_by=sort_by, row_limit=30, max_name_column_width=60))
    return images_per_second(clock.stamps, warmup, config.bs)


def profiled_activities() -> list:
    activities = [torch.profiler.ProfilerActivity.CPU]
    return activities + [torch.profiler.ProfilerActivity.CUDA] if torch.cuda.is_available() else activities


class TrainImages(torch.utils.data.Dataset):
    def __init__(self, paths, targets, backbone, size):
        self.paths, self.targets, self.backbone, self.size = paths, targets, backbone, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        pixels = np.asarray(prepare_image(open_rgb(self.paths[i]), self.size))[None]
        return torch.from_numpy(normalise(pixels, self.backbone)[0]), torch.from_numpy(
            self.targets[i].astype(np.float32)
        )


def plain_throughput(dataset, backbone, config, warmup: int, batches: int, loss_scaler: bool = False) -> float:
    """The same model in a hand-written loop: AdamW, BCE-with-logits, channels_last, the same autocast, no
    augmentation; ``loss_scaler``: with PyTorch's fp16 ``GradScaler``, as fastai's mixed precision has (fp16 only)."""
    learn = build_learner(
        make_dataloaders(dataset, backbone, config), backbone, config, path=Path("/tmp"), monitor_auc=False
    )
    learn.unfreeze()  # build_learner froze the body: train everything, as the fastai side does
    device = learn.dls.device  # where fastai trains (the GPU where there is one); its fit would move the model there
    model = learn.model.train().to(device, memory_format=torch.channels_last)
    data = TrainImages(dataset.image_paths("train"), dataset.targets("train"), backbone, config.img_size)
    loader = torch.utils.data.DataLoader(
        data, batch_size=config.bs, shuffle=True, drop_last=True, num_workers=config.num_workers
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=config.wd)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    mode = precision_mode(config.precision)
    autocast = torch.autocast(
        "cuda" if mode == "fp16" else "cpu",
        dtype=torch.float16 if mode == "fp16" else torch.bfloat16,
        enabled=mode != "fp32",
    )
    scaler = torch.amp.GradScaler("cuda", enabled=loss_scaler and mode == "fp16")
    stamps = []
    batches_of_epochs = ((epoch, batch) for epoch in itertools.count() for batch in loader)  # as many as needed
    for epoch, (x, y) in batches_of_epochs:
        optimiser.zero_grad()
        with autocast:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(x).float(), y.to(device, non_blocking=True))
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        stamps.append((epoch, stamp()))
        if len(stamps) >= warmup + batches:
            break
    return images_per_second(stamps, warmup, config.bs)


def main(argv: list[str] | None = None) -> int:
    parser = throughput_parser("python -m fastai_model.throughput", __doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per loop (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also the learner without batch augmentation and the plain loop with fp16's loss scaler: where the gap is",
    )
    parser.add_argument("--profile", type=Path, help="write PyTorch's profile of the trainer's learner here")
    parser.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes for both loops (default: 0 on a CPU, up to 8 with a GPU)",
    )
    args = parser.parse_args(argv)
    return run_cli(lambda: report(args))


def report(args: argparse.Namespace) -> None:
    """Every figure, printed as one JSON object."""
    dataset = load_dataset(args.dataset)
    backbone = get_backbone("lite0")
    config = make_config(
        img_size=args.img_size, bs=args.bs, lr=1e-4, precision=args.precision, num_workers=args.num_workers
    )
    torch.manual_seed(0)
    plain = plain_throughput(dataset, backbone, config, args.warmup, args.batches)
    trainer = fastai_throughput(dataset, backbone, config, args.warmup, args.batches)
    wrapped = fastai_throughput(dataset, backbone, config, args.warmup, args.batches, torch_optimizer=True)
    variants = {}
    if args.variants:
        variants["fastai_no_augmentation_img_per_s"] = fastai_throughput(
            dataset, backbone, config, args.warmup, args.batches, augment=False
        )
        variants["plain_loss_scaler_img_per_s"] = plain_throughput(
            dataset, backbone, config, args.warmup, args.batches, loss_scaler=True
        )
    if args.profile:
        fastai_throughput(dataset, backbone, config, args.warmup, args.batches, profile=args.profile)
    print(
        json.dumps(
            {
                "img_size": args.img_size,
                "bs": args.bs,
                "precision": precision_mode(args.precision),
                "batches": args.batches,
                "threads": torch.get_num_threads(),
                "fastai_img_per_s": round(trainer, 2),
                "plain_torch_img_per_s": round(plain, 2),
                "fastai_torch_adamw_img_per_s": round(wrapped, 2),
                "ratio": round(trainer / plain, 3),
                **{name: round(rate, 2) for name, rate in variants.items()},
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
