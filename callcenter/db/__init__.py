"""Database: declarative base, engine, migrations."""
