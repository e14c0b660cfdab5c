"""`python -m api`: serve the HTTP API with uvicorn on settings.api_host:api_port."""

from __future__ import annotations

import uvicorn

from config.settings import get_settings


def main() -> None:
    settings = get_settings()
    # The app writes its own JSON access line per request (api.observability); uvicorn's text
    # access log would say the same thing twice in another format.
    uvicorn.run("api.app:create_app", factory=True, host=settings.api_host,
                port=settings.api_port, log_level=settings.log_level.lower(), access_log=False)


if __name__ == "__main__":
    main()
