"""Adapters: cloud-trained models and cloud predictions into runs scored by the shared evaluator."""
