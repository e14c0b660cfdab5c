"""One router per resource family, all under /v1 (meta routes: /v1/plans, /problems)."""
