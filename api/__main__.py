"""`python -m api`: serve the HTTP API with uvicorn on settings.api_host:api_port.

Settings that cannot run (e.g. production with the development webhook secret) stop it before
it listens, with one line naming the setting and exit status 2.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from config.settings import get_settings


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        print(f"api: refusing to start: {where + ': ' if where else ''}{message}",
              file=sys.stderr)
        sys.exit(2)
    # The app writes its own JSON access line per request (api.observability); uvicorn's text
    # access log would say the same thing twice in another format.
    uvicorn.run("api.app:create_app", factory=True, host=settings.api_host,
                port=settings.api_port, log_level=settings.log_level.lower(), access_log=False)


if __name__ == "__main__":
    main()
