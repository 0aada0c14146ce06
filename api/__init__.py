"""tradecredit api package."""
