"""Database routing: the task engine's tables exist only on PostgreSQL.

Procrastinate's migrations use PostgreSQL's own SQL (functions, triggers, LISTEN/NOTIFY). On SQLite (a quick
look, the SQLite test run) they are skipped, and nothing can be enqueued there (calls/tasks.py says so).
"""

from __future__ import annotations

from django.db import connections


class JobsRouter:
    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool | None:
        if app_label == "procrastinate":
            return connections[db].vendor == "postgresql"
        return None
