"""tradecredit features package."""
