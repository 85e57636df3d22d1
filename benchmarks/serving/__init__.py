"""Serving layer: open any run's model, score images with its tuned thresholds, optimised runtimes, batching."""
