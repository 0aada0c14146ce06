"""Alembic migrations of the service database, applied by :func:`credit.db.upgrade`."""
