"""Latency and throughput of the prediction API, measured from a client over loopback.

Starts ``uvicorn api.app:app`` on a free port in a child process (with ``SERVING_RUNTIME`` set as asked), then per
model (and ``model=all``, every served model per request, where there are several): p50/p95 latency of one-image
requests sent one at a time, the model's own share of it (the ``latency_ms`` the API reports, summed over models for
``all``), and requests per second with 8 concurrent clients, each client on a keep-alive connection.
``python -m tools.api_load RESULTS IMAGE --runtimes native openvino`` compares serving runtimes, one
server after the other, on the same image.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served_api(
    results: Path, runtime: str = "native", server: str = "uvicorn", **settings: str
) -> Iterator[tuple[str, int]]:
    """The API on a free loopback port in a child process — ``uvicorn api.app:app``, or ``python -m api.ray_serve``
    (a local Ray started by it) — yielding its URL once /health answers; stopped on leaving."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if server == "ray-serve":
        command = [sys.executable, "-m", "api.ray_serve", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--log-level", "warning", "--timeout-keep-alive", "65"]  # as `make api` starts it
    environment = {**os.environ, "RESULTS_DIR": str(results), "SERVING_RUNTIME": runtime, **settings}
    environment.setdefault("MALLOC_ARENA_MAX", "2")  # as `make api` starts it
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600  # every model loads (and, for a first OpenVINO start, exports) before serving
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.time() > deadline or process.poll() is not None:
                raise SystemExit(f"error: the API did not start ({' '.join(command[1:4])}: run it by hand to see why)")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def measure_api(
    results: Path,
    image: Path,
    sequential: int = 40,
    concurrency: int = 8,
    seconds: float = 15.0,
    runtime: str = "native",
) -> dict:
    import requests

    with served_api(results, runtime) as (url, _):
        payload = image.read_bytes()
        clients = threading.local()
        figures = {}
        models = requests.get(f"{url}/models", timeout=10).json()
        runtimes = "/".join(sorted({m["runtime"] for m in models}))
        everything = {"id": "all", "kind": "every model per request", "runtime": runtimes}
        for model in models + [everything] * (len(models) > 1):

            def one(_=None):
                """One request on this thread's keep-alive connection: (client ms, the model's own ms)."""
                if not hasattr(clients, "session"):  # keep-alive, as an SDK or a browser keeps it
                    clients.session = requests.Session()
                session = clients.session
                start = time.perf_counter()
                reply = session.post(
                    f"{url}/predict",
                    files={"image": (image.name, payload, "image/jpeg")},
                    data={"model": model["id"]},
                    timeout=60,
                )
                reply.raise_for_status()
                model_ms = sum(p["latency_ms"] for p in reply.json()["predictions"])  # model=all: every model's
                return (time.perf_counter() - start) * 1000, model_ms

            for _ in range(3):
                one()
            timed = [one() for _ in range(sequential)]
            latencies, model_ms = [t[0] for t in timed], [t[1] for t in timed]
            done, stop = [], time.perf_counter() + seconds
            with ThreadPoolExecutor(concurrency) as pool:

                def worker(_):
                    count = 0
                    while time.perf_counter() < stop:
                        one()
                        count += 1
                    return count

                started = time.perf_counter()
                done = list(pool.map(worker, range(concurrency)))
                elapsed = time.perf_counter() - started
            figures[model["id"]] = {
                "kind": model["kind"],
                "runtime": model["runtime"],
                "p50_ms": round(float(np.percentile(latencies, 50)), 1),
                "p95_ms": round(float(np.percentile(latencies, 95)), 1),
                "model_p50_ms": round(float(np.percentile(model_ms, 50)), 1),  # the rest is HTTP, decode, JSON
                f"rps_at_concurrency_{concurrency}": round(sum(done) / elapsed, 1),
            }
        return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.api_load",
        description="p50/p95 of one-image requests and requests/s at 8 concurrent clients, per model and runtime.",
    )
    parser.add_argument("results", type=Path, help="results folder: every finished run with a model is served")
    parser.add_argument("image", type=Path, help="the image every request sends")
    parser.add_argument("--runtimes", nargs="+", choices=("native", "openvino"), default=["native", "openvino"])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the concurrent phase (default 15)")
    args = parser.parse_args(argv)
    if not args.image.is_file():
        raise SystemExit(f"error: {args.image}: no such image")
    figures = {
        runtime: measure_api(args.results, args.image, seconds=args.seconds, runtime=runtime)
        for runtime in args.runtimes
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
