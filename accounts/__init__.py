"""Organizations, their API keys and their customers: who is calling, and what they may see.

The HTTP API authenticates every request against ``accounts.keys`` and scopes every read and
write to the caller's organization; operators bootstrap the first key with
``python -m accounts create-organization NAME``.
"""
