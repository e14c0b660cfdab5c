"""The customer portal: server-rendered pages a customer opens from a single-use link
(``POST /v1/portal_sessions``), scoped to that customer only (docs/portal.md)."""
