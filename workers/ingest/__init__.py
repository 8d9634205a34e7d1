"""Ingestion and the join: predictions, outcomes and feedback in; matured examples out."""
