"""The store: the only place with SQL (SQLite, and PostgreSQL through store/dialect.py)."""
