"""The portal tests use the API tests' stack (time-skipping server, worker, localstripe, SQLite);
the browser tests add a real HTTP server and Chromium (tests/portal/browser.py)."""

from tests.api.conftest import api, http, org, other_org, settings  # noqa: F401
