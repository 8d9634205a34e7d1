"""What producers embed: load the champion, score, emit PredictionMade, reload on promotion."""
