"""Exports layer: models other tools export (Teachable Machine's Keras and TF.js files), read here, and runs written
from outside predictions (class mapping, adapter runs). Shared by the cloud adapters and the TM replica."""
