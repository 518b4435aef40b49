"""Who may do what: API tokens, web sessions, roles."""
