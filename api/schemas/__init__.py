"""Request and response bodies of the HTTP API, in Stripe's naming, with OpenAPI examples."""
