"""One router per resource: health, score, decisions, model."""
