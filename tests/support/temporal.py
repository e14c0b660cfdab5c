"""The Temporal servers for tests live in the testing kit (subscription_testing.temporal);
this name stays for the suite's imports."""

from subscription_testing.temporal import (  # noqa: F401
    _KINDS,
    dev_server_env,
    forwarding_runtime,
    register_search_attributes,
    time_skipping_env,
    venv_binary,
)
