"""Pause and resume (D12) as operators run them: the README's `$ temporal workflow ...` pause lines
executed verbatim (only the subscription id and server address change) and `subs pause` /
`subs resume`, as subprocesses against a time-skipping server with the real worker."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.cli.support import readme_commands, run, subscribe, wait_for
from tests.support.temporal import venv_binary
from workflows import client_ops

pytestmark = pytest.mark.temporal

async def test_readme_pause_commands_work_verbatim(stack):
    settings, env = stack
    sub_id = "sub_readme_pause"
    first = await subscribe(settings, env, sub_id)
    address = env.client.service_client.config.target_host
    commands = readme_commands("$ temporal workflow ")
    assert [c[c.index("--name") + 1] for c in commands] == [
        "pause", "resume", "pause", "resume", "change_plan", "change_plan"], \
        "README pause examples changed: update this test"

    async def temporal(argv: list[str]) -> str:
        argv = [a.replace("subscription-sub_123", f"subscription-{sub_id}") for a in argv]
        code, out, err = await run(venv_binary("temporal"), *argv[1:], "--address", address,
                                    "-o", "json")
        assert code == 0, f"{shlex.join(argv)} failed: {err}{out}"
        return out

    out = await temporal(commands[0])  # update: pause at period end, answers the new state
    result = json.loads(out)["result"]  # the state (its events carry the portal line)
    assert result["pause"]["mode"] == "at_period_end" and "renewal_line" not in result
    state = await wait_for(env, sub_id, lambda s: s.pause is not None)
    assert state.status.value == "active" and state.pause.paused_at == first.current_period_end

    await temporal(commands[1])  # signal resume: removes the scheduled pause
    await wait_for(env, sub_id, lambda s: s.pause is None)

    await temporal(commands[2])  # signal pause now, resume_at 2030-03-01
    state = await wait_for(env, sub_id, lambda s: s.status.value == "paused")
    assert state.pause.resume_at.isoformat().startswith("2030-03-01")

    await env.sleep(86400)  # a day later (a reset in the period's first second is a keep)
    out = await temporal(commands[3])  # update: resume with a new anchor, charged now
    assert '"status": "active"' in out.replace('":"', '": "')
    state = await client_ops.get_state(env.client, sub_id)
    assert state.status.value == "active" and state.billing_cycle_anchor > first.created
    assert state.period_key != first.period_key and state.current_period_paid == 2000

    await temporal(commands[4])  # signal: the yearly plan from the next renewal
    state = await wait_for(env, sub_id, lambda s: s.pending_plan is not None)
    assert state.pending_plan.id == "pro-yearly" and state.plan.id == "pro-monthly"
    await temporal(commands[5])  # update: the current plan again removes the pending change
    assert (await client_ops.get_state(env.client, sub_id)).pending_plan is None


async def test_subs_pause_and_resume(stack):
    settings, env = stack
    sub_id = "sub_cli_pause"
    await subscribe(settings, env, sub_id)
    cli_env = {"SUBS_DATABASE_URL": settings.database_url,
               "SUBS_TEMPORAL__ADDRESS": env.client.service_client.config.target_host}
    subs = str(Path(venv_binary("python")).parent / "subs")

    code, out, err = await run(subs, "pause", sub_id, "--mode", "now", "--resume-at",
                                "2001-01-01T00:00:00+00:00", env=cli_env)
    assert code == 2 and "resume_at" in err  # in the past: a clear error, nothing changed
    assert (await client_ops.get_state(env.client, sub_id)).status.value == "active"

    code, out, err = await run(subs, "pause", sub_id, "--mode", "now", env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "paused"

    code, out, err = await run(subs, "reactivate", sub_id, env=cli_env)
    assert code == 2 and "use resume" in err, (code, err)

    code, out, err = await run(subs, "resume", sub_id, "--anchor", "sometime", env=cli_env)
    assert code == 2 and "invalid" in err

    code, out, err = await run(subs, "resume", sub_id, env=cli_env)
    assert code == 0, err
    assert json.loads(out)["status"] == "active" and json.loads(out)["renewal"].startswith(
        "Renewing on")
