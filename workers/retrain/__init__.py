"""Retraining: triggers, a time-sliced dataset, gates, training, and the model registry."""
