"""Integration, property and concurrency tests over real stores (memory, SQLite, PostgreSQL, Redis)."""
