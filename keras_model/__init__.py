"""Keras 3 trainer on the registry's EfficientNet-Lite, ported from PyTorch; TensorFlow, JAX or PyTorch backend."""
