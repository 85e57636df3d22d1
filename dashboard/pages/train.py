"""Train page: start a trainer in the background, follow its progress, cancel it, then time its served model."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.models.registry import trainable_families
from benchmarks.training.options import SMALL_DATA_TRAIN_IMAGES, preset_for
from dashboard.logic import jobs


def render(dataset: Dataset, results: Path) -> None:
    st.header("Train a model locally")
    with st.form("train"):
        a, b, c = st.columns(3)
        trainers = {family.kind: family for family in trainable_families()}
        framework = a.selectbox("framework", list(trainers), format_func=lambda kind: trainers[kind].title)
        backbone = b.selectbox("backbone", trainers[framework].backbones)
        presets = trainers[framework].presets()  # the same for both trainers; the form updates on submit only
        suited = preset_for(len(dataset.rows("train")), presets)
        preset = c.selectbox(
            "preset",
            [*presets, "(none)"],
            index=presets.index(suited),
            help=f"default: {suited} for {len(dataset.rows('train'))} training images (small under "
            f"{SMALL_DATA_TRAIN_IMAGES}, chosen on small development draws; quick chosen on StampScenes)",
        )
        img_size = a.number_input("image size (0 = the backbone's)", 0, 640, 0, 16)
        epochs = b.number_input("epochs (-1 = preset's)", -1, 100, -1)
        freeze_epochs = c.number_input("freeze epochs (-1 = preset's)", -1, 20, -1)
        lr = a.text_input(
            "learning rate (empty = the preset's)",
            "",
            help="a number such as 4e-3; 'auto': the framework's default (fastai: fine_tune's 2e-3 from the probe's "
            "head, lr_find from a random one; Keras: 1e-3)",
        )
        seed = b.number_input("seed", 0, 10_000, 0)
        mixup = c.checkbox("MixUp")
        recipe = a.selectbox(
            "recipe",
            ["idiomatic", "matched"],
            help="idiomatic: the framework as its own documentation teaches; matched: the same head, optimizer, LR "
            "schedule and augmentations in fastai and Keras, so their difference measures the framework alone",
        )
        submitted = st.form_submit_button("start training")
    if submitted:
        options = {
            "preset": None if preset == "(none)" else preset,
            "backbone": backbone,
            "img_size": img_size or None,
            "epochs": None if epochs < 0 else epochs,
            "freeze_epochs": None if freeze_epochs < 0 else freeze_epochs,
            "lr": lr.strip() or None,
            "seed": seed,
            "mixup": mixup,
            "recipe": recipe,
        }
        command = jobs.train_command(framework, dataset.root, results, options)
        st.session_state["job"] = jobs.start_training(command, results / ".dashboard" / f"train-{int(time.time())}.log")
    job = st.session_state.get("job")
    if job:
        show_job(job, dataset.root, results)


@st.fragment(run_every=2)
def show_job(job: dict, dataset_root: Path, results: Path) -> None:
    status = jobs.training_status(job, results)
    planned = max(status["epochs_planned"], 1)
    eta = f" · about {status['eta_s'] / 60:.0f} min left" if status["eta_s"] else ""
    st.progress(
        min(status["epochs_done"] / planned, 1.0),
        text=f"{status['state']}: {status['epochs_done']:.1f}/{status['epochs_planned']} epochs{eta} · "
        f"{status['run'] or 'starting…'}",
    )
    if status["state"] == "running" and st.button("cancel training", help="Ctrl-C: the run is kept as interrupted"):
        jobs.cancel_training(job)
    st.code("\n".join(status["tail"]) or "…", language=None)
    if Path(job["log"]).is_file():
        st.download_button(
            "full log (with framework messages)",
            Path(job["log"]).read_bytes(),
            file_name=Path(job["log"]).name,
            key=f"log-{job['pid']}",
        )
    if status["state"] == "cancelled":
        where = status["run"] or "no run folder yet"
        st.warning(f"cancelled; {where} is marked interrupted (continue it with the trainer's --resume {where})")
        return
    if status["state"] == "done" and status["run"]:
        if "measuring" not in job:  # then its latency, by the protocol every other run was timed with
            job["measuring"] = jobs.start_training(
                jobs.measure_command(dataset_root, results, status["run"]),
                Path(job["log"]).with_suffix(".latency.log"),
            )
        if job["measuring"]["process"].poll() is None:
            st.info(f"trained: {status['run']} — now timing its served model (one latency protocol, ~15 s)…")
        else:
            st.success(f"finished: {status['run']} is on the leaderboard, with its latency")
    elif status["state"] == "failed":
        st.error(status["error"])
