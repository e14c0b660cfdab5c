"""The HTTP API (FastAPI): organizations' keys in, Stripe-named resources out.

It holds no business rules of its own: requests become the core's request models and travel to
the subscription workflow as validated updates, so the API, the CLI and signals refuse the same
things with the same words. ``api.app:create_app`` builds the application.
"""
