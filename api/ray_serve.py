"""``python -m api.ray_serve``: the same FastAPI app (same routes, same scoring path) deployed on Ray Serve.

Serve runs ``api.app.app`` inside each replica (``serve.ingress``; its lifespan loads the models there), spreads
requests over ``--replicas`` replicas on the cluster, and sheds load itself: at most ``--max-ongoing`` requests run
in a replica at once, and a request that would wait behind ``--max-queued`` others is answered 503 by Serve's
router (``max_queued_requests``) — on top of the app's own per-model queue. Replicas read the same settings as
``make api`` (RESULTS_DIR, SERVE_RUNS, SERVING_RUNTIME, API_KEY, MAX_UPLOAD_MB, ...), passed to them through the
deployment's runtime environment; RESULTS_DIR must be a path every node of the cluster can read.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks.errors import BenchmarkError, run_cli

FORWARDED_SETTINGS = (
    "RESULTS_DIR",
    "SERVE_RUNS",
    "SERVING_RUNTIME",
    "API_KEY",
    "MAX_UPLOAD_MB",
    "MAX_QUEUED_PER_MODEL",
    "REQUEST_TIMEOUT_S",
    "IMGBENCH_CACHE",
    "MALLOC_ARENA_MAX",
)
APP_NAME = "imgbench"


def replica_environment() -> dict[str, str]:
    """This process's serving settings for the replicas (RESULTS_DIR made absolute: replicas start elsewhere)."""
    settings = {name: os.environ[name] for name in FORWARDED_SETTINGS if name in os.environ}
    settings["RESULTS_DIR"] = str(Path(settings.get("RESULTS_DIR", "results")).resolve())
    settings.setdefault("MALLOC_ARENA_MAX", "2")  # as `make api`: glibc's per-thread arenas would grow each replica
    return settings


def replica_app():
    """Evaluated in each replica: the app module's own ``app`` (its routes read that object's state, which its
    lifespan fills), not a pickled copy of it."""
    from api.app import app

    return app


def build_application(replicas: int = 1, max_ongoing: int = 8, max_queued: int = 16, cpus: float = 1.0):
    """The Serve application: one deployment wrapping the FastAPI app."""
    from ray import serve

    @serve.deployment(
        name="ImgbenchAPI",
        num_replicas=replicas,
        max_ongoing_requests=max_ongoing,
        max_queued_requests=max_queued,
        ray_actor_options={"num_cpus": cpus, "runtime_env": {"env_vars": replica_environment()}},
    )
    @serve.ingress(replica_app)
    class ImgbenchAPI:
        """The app's routes, served by each replica."""

    return ImgbenchAPI.bind()


def deploy(address: str | None, host: str, port: int, **options) -> None:
    """Start Serve on the cluster (``address``; None: a local Ray started here) and run the application."""
    import ray
    from ray import serve

    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BenchmarkError(f"--address {address}: cannot connect to a Ray cluster ({exc})") from None
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_application(**options), name=APP_NAME, route_prefix="/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.ray_serve", description=__doc__.split("\n\n")[0])
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("--address", default=None, help="Ray cluster (ray://HOST:10001 or HOST:6379); default: local")
    parser.add_argument("--host", default="127.0.0.1", help="where Serve's HTTP proxy listens (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--replicas", type=int, default=1, help="copies of the app across the cluster (default 1)")
    parser.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs Ray reserves for each replica")
    parser.add_argument("--max-ongoing", type=int, default=8, help="requests one replica runs at once (default 8)")
    parser.add_argument("--max-queued", type=int, default=16, help="waiting requests before 503 (default 16)")
    args = parser.parse_args(argv)

    def body() -> None:
        deploy(
            args.address,
            args.host,
            args.port,
            replicas=args.replicas,
            max_ongoing=args.max_ongoing,
            max_queued=args.max_queued,
            cpus=args.cpus_per_replica,
        )
        print(f"serving on http://{args.host}:{args.port} through Ray Serve; Ctrl-C stops it")
        while True:
            time.sleep(3600)

    return run_cli(body, interrupted="stopped")


if __name__ == "__main__":
    raise SystemExit(main())
