"""Measured shortcuts past library overhead on the request path.

Each module here does what a plain library call does, minus Python-side setup that costs
more than the work itself on one row or one statement. Each opens with why it exists and
what it is measured against, and its test (``tests/unit/credit/test_fastpath_*.py``) checks that it
gives the plain path's results exactly:

- :mod:`credit.fastpath.lightgbm_row`: one row through LightGBM's C API, not
  ``Booster.predict`` (the scorer, :mod:`credit.scoring`);
- :mod:`credit.fastpath.dbapi`: SQLAlchemy's own SQL run on the pooled DBAPI connection,
  not through ``Connection.execute`` (API keys, online features, the audit insert).

Nothing is imported here, so using one does not load the other's libraries.
"""
