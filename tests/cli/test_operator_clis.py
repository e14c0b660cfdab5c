"""The operator CLIs as operators run them: the `temporal` commands printed in the README and the
`subs` CLI, as subprocesses against a time-skipping server with the real worker, localstripe and
SQLite. The README's `temporal workflow ...` lines are executed verbatim (only the subscription
id and the server address change), so the documentation cannot drift from the workflow."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path

from tests.cli.support import readme_commands, run, subscribe, wait_for
from tests.support.temporal import venv_binary
from workflows import client_ops


async def test_readme_temporal_commands_work_verbatim(stack):
    settings, env = stack
    sub_id = "sub_readme"
    await subscribe(settings, env, sub_id)
    address = env.client.service_client.config.target_host
    commands = readme_commands("temporal workflow ")
    names = [c[c.index("--name") + 1] if "--name" in c else c[c.index("--type") + 1]
             for c in commands]
    assert names == ["retry", "cancel", "reactivate", "postpone", "cancel", "state",
                     "rejected_signals"], "README examples changed: update this test"
    retry, commands = commands[0], commands[1:]  # "Held subscriptions", then "Operating"

    async def temporal(argv: list[str]) -> str:
        argv = [a.replace("subscription-sub_123", f"subscription-{sub_id}") for a in argv]
        code, out, err = await run(venv_binary("temporal"), *argv[1:], "--address", address,
                                   "-o", "json")
        assert code == 0, f"{shlex.join(argv)} failed: {err}{out}"
        return out

    await temporal(commands[0])  # signal cancel at period end
    state = await wait_for(env, sub_id, lambda s: s.status.value == "non_renewing")
    assert state.cancel_at == state.current_period_end

    await temporal(commands[1])  # signal reactivate
    state = await wait_for(env, sub_id, lambda s: s.status.value == "active")
    assert state.cancel_at is None

    # postpone needs a scheduled cancellation; the README's date lies beyond this period
    await temporal(commands[0])
    await wait_for(env, sub_id, lambda s: s.status.value == "non_renewing")
    await temporal(commands[2])
    state = await wait_for(env, sub_id, lambda s: s.cancel_at is not None
                            and s.cancel_at.isoformat().startswith("2027-01-31"))

    # a refused signal changes nothing and is listed by the rejected_signals query
    await temporal(commands[1])  # reactivate: allowed (cancel scheduled), returns to active
    await wait_for(env, sub_id, lambda s: s.cancel_at is None)
    await temporal(commands[1])  # reactivate again: nothing scheduled -> refused
    rejected = json.loads(await temporal(commands[5]))["queryResult"][0]
    assert rejected and rejected[-1]["kind"] == "reactivate"
    await temporal(retry)  # a retry signal for a subscription that is not held: refused
    for _ in range(50):  # the signal is judged by the workflow's next task
        rejected = json.loads(await temporal(commands[5]))["queryResult"][0]
        if rejected[-1]["kind"] == "retry":
            break
        await asyncio.sleep(0.1)
    assert (rejected[-1]["kind"], rejected[-1]["code"]) == ("retry", "not_held")

    state = json.loads(await temporal(commands[4]))["queryResult"][0]
    assert state["status"] == "active" and state["cancel_at"] is None

    out = await temporal(commands[3])  # update: immediate cancel answers with the new state
    assert "canceled" in out
    final = await client_ops.get_state(env.client, sub_id)
    assert final.status.value == "canceled" and final.ended_at is not None


async def test_subs_cli_operates_a_subscription(stack):
    settings, env = stack
    sub_id = "sub_cli"
    await subscribe(settings, env, sub_id, customer_id="cus_cli")
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    subs = str(Path(venv_binary("python")).parent / "subs")

    code, out, err = await run(subs, "cancel", sub_id, "--mode", "at_period_end", env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "non_renewing"
    assert "Cancelling on" in json.loads(out)["renewal"]

    code, out, err = await run(subs, "postpone", sub_id, "--at", "2001-01-01T00:00:00+00:00",
                               env=cli_env)
    assert code == 2 and "refused" in err  # in the past: a clear error, nothing changed
    assert (await client_ops.get_state(env.client, sub_id)).status.value == "non_renewing"

    code, out, err = await run(subs, "reactivate", sub_id, env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "active"

    code, out, err = await run(subs, "show", sub_id, env=cli_env)
    assert code == 0 and json.loads(out)["renewal"].startswith("Renewing on")

    code, out, err = await run(subs, "list", "--organization", "org_cli", env=cli_env)
    assert code == 0 and sub_id in out and "active" in out

    code, out, err = await run(subs, "events", sub_id, env=cli_env)
    assert code == 0
    assert re.search(r"customer\.subscription\.updated\s+operator:cli", out)

    code, out, err = await run(subs, "credits", "cus_cli", env=cli_env)
    assert code == 0 and json.loads(out)["subscription"] == 100

    code, out, err = await run(subs, "cancel", sub_id, "--mode", "sometimes", env=cli_env)
    assert code == 2 and "invalid" in err
