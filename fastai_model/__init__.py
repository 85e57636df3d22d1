"""fastai (PyTorch) multi-label transfer-learning trainer."""

import warnings

# fastai's own import calls torch.jit.script, which PyTorch marks deprecated: nothing a user can act on. Here, so
# every way in (training, serving, latency, the throughput probe) stays quiet.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
