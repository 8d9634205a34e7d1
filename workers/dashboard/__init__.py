"""The operators' dashboard: quality, drift, lag and the retrain loop; approve, reject,
roll back."""
