"""Outcome Loop worker: pairs predictions with late outcomes and keeps models honest."""

__version__ = "0.1.0"
