"""The model registry: versions, the champion alias and its history, artifacts on disk."""
