"""Shadow challengers: online River models racing the champion on the same outcomes."""
