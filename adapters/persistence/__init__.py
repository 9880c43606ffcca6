"""Event store and read-model persistence for SQLite, PostgreSQL and in-memory."""
