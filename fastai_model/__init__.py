"""fastai (PyTorch) multi-label transfer-learning trainer."""
