"""What the dashboard pages show, as plain functions over the dataset and results formats (unit-tested), one module
per page's concern.

Nothing here computes a metric of its own: numbers come from metrics.json, or from ``benchmarks.evaluation.metrics``
when the user moves a threshold.
"""
