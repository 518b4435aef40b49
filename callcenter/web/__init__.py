"""Web plumbing shared by every page and API: error middleware, JSON helpers."""
