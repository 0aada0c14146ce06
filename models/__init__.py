"""tradecredit models package."""
