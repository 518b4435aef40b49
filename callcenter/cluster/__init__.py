"""Several servers on one PostgreSQL database: a bus between them (LISTEN/NOTIFY)."""
