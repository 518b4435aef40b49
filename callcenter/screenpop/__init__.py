"""Screen-pop: who is calling, built from the directory and pushed to agents."""
