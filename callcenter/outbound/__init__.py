"""The outbound dialer every campaign uses (回访 surveys first): a job table,
calling hours, retry rules, a per-PBX limit, and the call scripts."""
