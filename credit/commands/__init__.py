"""Command modules of the ``credit`` CLI, one per command group."""
