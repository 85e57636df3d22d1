"""Native framework calls all run on one thread, whichever thread asks: PyTorch's OpenMP keeps one team."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from benchmarks.serving import framework_thread
from benchmarks.serving.framework_thread import on_framework_thread
from benchmarks.serving.predictors import load_predictor


def test_calls_from_any_thread_run_on_one_thread_and_errors_come_back():
    home = on_framework_thread(threading.get_ident)
    with ThreadPoolExecutor(6) as pool:
        seen = set(pool.map(lambda _: on_framework_thread(threading.get_ident), range(24)))
    assert seen == {home} and home != threading.get_ident()
    assert on_framework_thread(lambda: on_framework_thread(threading.get_ident)) == home  # nested: inline, no deadlock
    with pytest.raises(ValueError, match="bad input"):
        on_framework_thread(lambda: (_ for _ in ()).throw(ValueError("bad input")))


@pytest.mark.parametrize("fixture", ["fastai_run", "replica_run"])
def test_a_native_model_is_loaded_and_run_on_the_framework_thread(request, fixture, monkeypatch):
    """fastai: loaded there, its network batched there; the TM replica (no separate network): its predict there."""
    run = request.getfixturevalue(fixture)
    home = on_framework_thread(threading.get_ident)
    real = framework_thread.on_framework_thread
    calls = []

    def recording(function, *args, **kwargs):
        def noted():
            calls.append(threading.get_ident())
            return function(*args, **kwargs)

        return real(noted)

    monkeypatch.setattr("benchmarks.serving.predictors.on_framework_thread", recording)
    monkeypatch.setattr("benchmarks.serving.framework_thread.on_framework_thread", recording)
    predictor = load_predictor(run.path, "native")
    loads = len(calls)
    image = Image.new("RGB", (64, 64), (120, 30, 200))
    with ThreadPoolExecutor(4) as pool:
        scores = list(pool.map(lambda _: predictor.predict([image]), range(8)))
    assert loads == 1 and len(calls) > loads and set(calls) == {home}
    assert all(abs(s - scores[0]).max() < 1e-6 for s in scores)


def test_a_forked_child_gets_a_framework_thread_of_its_own():
    import multiprocessing

    on_framework_thread(threading.get_ident)  # started in the parent before the fork
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply_async(on_framework_thread, (abs, -42)).get(timeout=30) == 42  # a hang here: no thread
