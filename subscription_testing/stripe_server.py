"""A real localstripe server for tests (the kit's session fixture ``subscription_localstripe``).

localstripe (1.15.10) pickles its whole store to the hard-coded /tmp/localstripe.pickle after
every write and reloads it at start. Tests must neither inherit nor clobber the state of a dev
stack's localstripe (nor slow down as the store grows), so the process is started with
``--from-scratch`` and with the dump turned off; everything else is the unmodified server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO

from config.settings import StripeSettings
from devstack.processes import stop

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, then every charge is declined

_LAUNCH = (
    "import sys\n"
    "import localstripe.resources as resources\n"
    "resources.Store.dump_to_disk = lambda self: None\n"
    "sys.argv = ['localstripe', '--port', sys.argv[1], '--from-scratch']\n"
    "from localstripe.server import start\n"
    "start()\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen
    log: IO[bytes]

    def stop(self) -> str:
        """Stop the process; return the end of its log (for error messages)."""
        stop(self.process, timeout=5)
        if self.log.closed:
            return ""
        self.log.seek(0)
        tail = self.log.read()[-2000:].decode(errors="replace")
        self.log.close()
        return tail


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/customers?limit=1",
                                     headers={"Authorization": "Bearer sk_test_local"})
    try:
        with urllib.request.urlopen(request, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def start_localstripe(timeout: float = 20.0, attempts: int = 3) -> LocalStripe:
    """Start localstripe on a free port and wait until it answers HTTP."""
    last_error = "not started"
    for _ in range(attempts):  # the free port may be taken between probe and bind
        port = free_port()
        # Its access log goes to stderr: a file, never an unread pipe (a full pipe blocks it).
        log = tempfile.TemporaryFile()
        process = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(port)],
                                   stdout=subprocess.DEVNULL, stderr=log)
        server = LocalStripe(f"http://127.0.0.1:{port}", process, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(server.url):
                return server
            time.sleep(0.05)
        last_error = server.stop()
    raise RuntimeError(f"localstripe did not start: {last_error}")


def stripe_settings(api_base: str, **overrides) -> StripeSettings:
    """Settings for tests: localstripe needs ``confirm_off_session=False``; the limiter is
    raised so tests are not paced at the production rate."""
    values = {"api_base": api_base, "max_requests_per_second": 1000.0,
              "confirm_off_session": False, "request_timeout_seconds": 5.0, **overrides}
    return StripeSettings(**values)
