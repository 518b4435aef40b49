"""The agent console: sign-in, the agent and supervisor pages, search, audit."""
