"""Emergency paging: incidents, escalation policies, phone pages that must be
accepted with a key press, every attempt audited, timers kept in the database."""
