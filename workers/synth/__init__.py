"""Synthetic producers for the demo and tests: drifting data, late and missing outcomes."""
