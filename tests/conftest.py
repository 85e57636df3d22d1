"""Tiny data made in the tests: fake stamp folders, a 48-image StampScenes, and a dataset writer."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)
from benchmarks.data.dataset import write_dataset
from benchmarks.data.stampscenes import build_stampscenes

FAKE_STAMP_FOLDERS = {
    "animals/birds": 5,
    "food/fruit": 5,
    "vehicles": 5,
    "animals/insects/cartoon": 5,
    "town/roadsigns": 3,
}


TRAINED_FIXTURES = {"fastai_run", "keras_run", "replica_run"}  # the session's tiny models, trained once and shared


def pytest_collection_modifyitems(items):
    """A test that needs the session's trained models is a training test too (``make test-fast`` leaves it out)."""
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.training)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Feature caches go to a per-session temp folder, never the user's home. Session-scoped and autouse, so it is
    set before the session's trained fixtures (a function-scoped one came after them: they used ~/.cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMGBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


def draw_stamp(path: Path, rng: np.random.Generator) -> None:
    """A coloured ellipse or polygon on transparency, like a small Tux Paint cut-out."""
    size = int(rng.integers(40, 80))
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(0, 255, 3)) + (255,)
    if rng.random() < 0.5:
        draw.ellipse((4, 4, size - 4, size - 4), fill=colour)
    else:
        draw.polygon([(size // 2, 2), (size - 2, size - 2), (2, size - 2)], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


@pytest.fixture(scope="session")
def fake_stamps(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stamps")
    rng = np.random.default_rng(0)
    for folder, count in FAKE_STAMP_FOLDERS.items():
        for i in range(count):
            draw_stamp(root / folder / f"stamp{i}.png", rng)
    return root


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory, fake_stamps) -> Path:
    """A 48-image, 64-px StampScenes built from the fake stamps (train 32 / valid 8 / test 8)."""
    out = tmp_path_factory.mktemp("scenes") / "tiny"
    build_stampscenes(out, size=48, img_size=64, seed=1, stamps_dir=fake_stamps, workers=1)
    return out


def solid_image(path: Path, colour=(200, 30, 30), size=(32, 32), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


def make_dataset(root: Path, rows: list[tuple[str, str, str]], labels: list[str]) -> Path:
    """Write images (a distinct colour each) and a dataset from (image, labels, split) rows."""
    rng = np.random.default_rng(len(rows))
    for image, _, _ in rows:
        pixels = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / image)
    items = pd.DataFrame([(i, tuple(names.split()), s) for i, names, s in rows], columns=["image", "labels", "split"])
    write_dataset(root, items, labels, name=root.name)
    return root


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    rows = [
        (f"images/{s}{i}.png", lab, s)
        for s in ("train", "valid", "test")
        for i, lab in enumerate(["cat", "dog", "cat dog", ""])
    ]
    return make_dataset(tmp_path / "small", rows, ["cat", "dog"])


TINY_TRAINING = dict(img_size=64, epochs=1, freeze_epochs=1, lr=1e-3, bs=8)


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory) -> Path:
    """One results folder holding a tiny fastai run, a tiny Keras run and a TM replica (each trained once a session)."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="session")
def fastai_run(tiny_scenes, tiny_results):
    from fastai_model.config import make_config
    from fastai_model.train import train

    return train(tiny_scenes, tiny_results, make_config(**TINY_TRAINING))


@pytest.fixture(scope="session")
def keras_run(tiny_scenes, tiny_results):
    from keras_model.config import make_config
    from keras_model.train import train

    return train(tiny_scenes, tiny_results, make_config(**TINY_TRAINING, precision="fp32"))


@pytest.fixture(scope="session")
def replica_run(tiny_scenes, tiny_results):
    """A Teachable Machine replica beside them (3 epochs), so pages and the API show a third kind of model."""
    from benchmarks.data.dataset import load_dataset
    from tm_replica.replica import train_replica

    return train_replica(load_dataset(tiny_scenes), tiny_results, epochs=3)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float = 120) -> None:
    """Poll ``url`` until it answers 200 (servers started by a test take a few seconds to import)."""
    import time

    import requests

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):  # a proxy up before its app answers slowly
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up within {seconds} s")


def refused(capsys, argv: list[str], message: str, main=None) -> str:
    """``main(argv)`` (a CLI: benchmarks by default, cloud_baselines, tools.predict) exits 2 with one line holding
    ``message``: no traceback."""
    if main is None:
        from benchmarks.cli import main
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    return err


@pytest.fixture
def ray_cluster(tmp_path):
    """A real Ray head on 127.0.0.1 with 2 CPUs, as `ray start --head` makes one on any machine, with token
    authentication (Ray's default since 2.59) through a token file the driver is given too."""
    port = free_port()
    token = tmp_path / "ray-token"
    token.write_text(secrets.token_hex(32))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    ray = str(Path(sys.executable).parent / "ray")
    start = [ray, "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1"]
    subprocess.run(
        [*start, "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats"],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env)
