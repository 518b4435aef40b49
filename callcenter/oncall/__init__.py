"""On-call schedules: who answers for a role in a community at a given moment,
and the router that rings them in chain order over the caller's channel."""
