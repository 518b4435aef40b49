"""One owner per Asterisk link: a lease row per link in PostgreSQL (``docs/HA.md``)."""
