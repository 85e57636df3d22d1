"""Teachable Machine replica: TM's own network and recipe, trained locally, as a model family of its own."""
