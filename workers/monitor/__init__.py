"""Monitoring: rolling quality, drift and lag."""
