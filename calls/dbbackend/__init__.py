"""Django's PostgreSQL backend, made to answer at once when PostgreSQL is down (see base.py)."""
