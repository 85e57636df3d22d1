"""``python -m fastai_model.predict RUN IMAGE``: each label's score and the labels over their tuned thresholds."""
import sys
import warnings

warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning)

from benchmarks.predict_cli import predict_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return predict_main(argv, "python -m fastai_model.predict", "fastai")


if __name__ == "__main__":
    sys.exit(main())
