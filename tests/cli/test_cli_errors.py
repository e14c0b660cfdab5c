"""`subs` answers bad input and an unreachable stack with one clear line and a non-zero exit,
never a traceback, and never an empty success for something that does not exist."""

from __future__ import annotations

import sys

import pytest

from tests.cli.support import run
from tests.fakes_stripe import free_port

CASES = [
    (["show", "sub_nope"], 1, "is `make dev` (or the deployment) running?"),
    (["events", "sub_nope"], 1, "no subscription sub_nope"),
    (["credits", "cus_nope"], 1, "no customer cus_nope"),
    (["list", "--organization", "org_x", "--status", "bogus"], 2, "no status 'bogus'"),
    (["cancel", "sub_nope", "--mode", "sometimes"], 2, "invalid mode:"),
    (["retry"], 2, "name a subscription id or pass --all-held"),
    (["demo", "--scenario", "bogus"], 2, "no scenario 'bogus'; choose one of dunning,"),
    (["demo", "--api-url", f"http://127.0.0.1:{free_port()}"], 1, "is `make dev` running?"),
    (["webhooks", "retry"], 2, "name a delivery id or pass --all-dead"),
    (["webhooks", "retry", "12x"], 2, "not a delivery id: '12x'"),
    (["webhooks", "retry", "999"], 1, "no webhook delivery 999"),
]


@pytest.mark.parametrize(("argv", "code", "says"), CASES, ids=[c[0][0] for c in CASES])
async def test_one_line_and_an_exit_code(sqlite_url, argv, code, says):
    env = {"SUBS_DATABASE_URL": sqlite_url,
           "SUBS_TEMPORAL__ADDRESS": f"127.0.0.1:{free_port()}"}  # nothing listens there
    got, out, err = await run(sys.executable, "-m", "cli.main", *argv, env=env)
    assert got == code, (out, err)
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in out + err
