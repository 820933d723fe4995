"""Storage: the SQLite connection, schema migrations, and every SQL statement."""
