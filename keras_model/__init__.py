"""Keras 3 (TensorFlow backend) trainer on the registry's EfficientNet-Lite, ported from PyTorch."""
