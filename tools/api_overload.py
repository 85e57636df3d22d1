"""``python -m tools.api_overload RESULTS IMAGE``: the API under more load than it can serve, measured from clients.

For each number of concurrent clients (default 8, 32, 128), every client sends one-image requests for one model on
its own keep-alive connection for ``--seconds``, waiting as long as a 503's Retry-After says before its next
request (as an SDK's retry policy does); the table counts what was accepted (requests/s, p50 and p99
latency), what was shed (503 with Retry-After), and any other error (there should be none), with the server's
resident memory before and after. ``--server ray-serve`` measures the same app on Ray Serve (a local Ray), so the
overhead of the distributed path is known. ``--markdown FILE`` writes the page the docs link to.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write_text
from benchmarks.errors import BenchmarkError, run_cli
from benchmarks.evaluation.machine import environment
from benchmarks.runner.figures import commit, describe_machine

from .api_load import served_api


def rss_mb(pid: int) -> float | None:
    """A process's resident memory (Linux /proc), None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def flood(url: str, model: str, payload: bytes, clients: int, seconds: float) -> dict:
    """``clients`` threads posting for ``seconds``: accepted latencies, and every other answer by status."""
    import requests

    accepted: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        session = requests.Session()
        while time.perf_counter() < stop:
            start = time.perf_counter()
            retry_after = 0.0
            try:
                reply = session.post(f"{url}/predict", files={"image": ("image.jpg", payload, "image/jpeg")},
                                     data={"model": model}, timeout=120)  # fmt: skip
                status = reply.status_code
                if status == 503:
                    retry_after = float(reply.headers.get("Retry-After", 1))
            except requests.RequestException as error:
                status = type(error).__name__
            with lock:
                statuses[status] += 1
                if status == 200:
                    accepted.append((time.perf_counter() - start) * 1000)
            if retry_after:  # as a well-behaved client (an SDK's retry policy) does
                time.sleep(max(0.0, min(retry_after, stop - time.perf_counter())))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "accepted": len(accepted),
        "accepted_per_s": round(len(accepted) / elapsed, 1),
        "p50_ms": round(float(np.percentile(accepted, 50)), 1) if accepted else None,
        "p99_ms": round(float(np.percentile(accepted, 99)), 1) if accepted else None,
        "shed_503": statuses.get(503, 0),
        "other_errors": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
    }


def measure(results: Path, image: Path, model: str | None, clients: list[int], seconds: float, server: str) -> dict:
    import requests

    settings = {"SERVE_RUNS": model} if model else {}
    with served_api(results, server=server, **settings) as (url, pid):
        models = requests.get(f"{url}/models", timeout=30).json()
        if not models:
            raise BenchmarkError(f"{results}: no model to serve")
        chosen = model or models[0]["id"]
        payload = image.read_bytes()
        flood(url, chosen, payload, 2, 3.0)  # warm-up: first calls trace graphs and allocate
        rows = []
        watched = pid if server == "uvicorn" else None  # Ray Serve's replica is a Ray worker, not the process started
        for count in clients:
            before = rss_mb(watched) if watched else None
            row = flood(url, chosen, payload, count, seconds)
            row.update(rss_before_mb=before, rss_after_mb=rss_mb(watched) if watched else None)
            rows.append(row)
            print(json.dumps(row))
    return {"server": server, "model": chosen, "rows": rows}


def render(measured: list[dict], command: str) -> str:
    machine = describe_machine({k: v for k, v in environment().items() if k in ("cpu", "cpu_features", "cpu_count")})
    lines = [
        "# Serving under overload",
        "",
        f"Generated by `{command}` on {date.today().isoformat()}, commit {commit()}: **{machine}**. Do not edit: run "
        "the command again. Clients and server on the same machine (loopback): the clients take CPU from the server, "
        "as they would not in production. RSS: the uvicorn process (not measured for Ray Serve, whose replica is a "
        "Ray worker).",
        "",
        "| server | model | clients | accepted req/s | p50 ms | p99 ms | shed (503) | other errors | RSS before → "
        "after, MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for part in measured:
        for row in part["rows"]:
            errors = ", ".join(f"{k}: {v}" for k, v in row["other_errors"].items()) or "0"
            lines.append(
                f"| {part['server']} | {part['model']} | {row['clients']} | {row['accepted_per_s']} | {row['p50_ms']} "
                f"| {row['p99_ms']} | {row['shed_503']} | {errors} | {_rss(row)} |"
            )
    return "\n".join(lines) + "\n"


def _rss(row: dict) -> str:
    return "—" if row["rss_before_mb"] is None else f"{row['rss_before_mb']} → {row['rss_after_mb']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.api_overload", description=__doc__.split("\n\n")[0])
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("results", type=Path, help="results folder")
    parser.add_argument("image", type=Path, help="the image every request sends")
    parser.add_argument("--model", default=None, help="run id to serve and load (default: the first /models lists)")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (default 30)")
    parser.add_argument("--servers", nargs="+", choices=["uvicorn", "ray-serve"], default=["uvicorn"])
    parser.add_argument("--markdown", type=Path, default=None, help="write the results page here")
    args = parser.parse_args(argv)

    def body() -> None:
        if not args.image.is_file():
            raise BenchmarkError(f"{args.image}: no such image")
        measured = [measure(args.results, args.image, args.model, args.clients, args.seconds, s) for s in args.servers]
        if args.markdown:
            shown = argv if argv is not None else sys.argv[1:]
            command = "python -m tools.api_overload " + " ".join(shown)
            atomic_write_text(args.markdown, render(measured, command))
            print(f"page written: {args.markdown}")

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
