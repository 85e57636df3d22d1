"""User-facing errors: each one is a single line naming the file or field and what to do."""


class BenchmarkError(Exception):
    """A problem with the user's input; the CLI prints it as one line, without a traceback."""


class DatasetError(BenchmarkError):
    """A dataset folder that does not follow the dataset format."""


class RunError(BenchmarkError):
    """A run folder that does not follow the results format."""


def first_line(exc: BaseException, limit: int | None = 160) -> str:
    """An exception's message cut to one line (its class name when the message is empty), for one-line errors."""
    return (str(exc).splitlines() or [exc.__class__.__name__])[0][:limit]


def run_cli(body, interrupted: str = "interrupted") -> int:
    """Exit codes every CLI here shares: 0 ok, 2 = bad input (one line, no traceback), 130 = Ctrl-C."""
    import sys

    try:
        result = body()
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0  # a body may return its own exit code


def interruptible() -> None:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt here even when a shell started this process in the background: it
    ignores SIGINT there, and a grid's or a tuner's stop request (a SIGINT) would go unheard."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
