"""User-facing errors: each one is a single line naming the file or field and what to do."""


class BenchmarkError(Exception):
    """A problem with the user's input; the CLI prints it as one line, without a traceback."""


class DatasetError(BenchmarkError):
    """A dataset folder that does not follow the dataset format."""


class RunError(BenchmarkError):
    """A run folder that does not follow the results format."""
