"""Training layer: the options, keep-best rule and run lifecycle both trainers share."""
