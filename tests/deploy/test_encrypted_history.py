"""With the payload codec on, the history Temporal stores holds no customer id and no cancel
comment in clear: exported with the README's CLI command (``temporal workflow show --output
json``) from a real dev server, after a real subscription ran on a worker. The same command
with ``--codec-endpoint`` pointed at the API's /codec (served over real HTTP) reads them back,
which is what the Web UI does too, after a key rotation (the old key kept for reading); the
endpoint wants its token and answers CORS for the UI.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from config.settings import CodecSettings, Settings, TemporalSettings
from domain.plans import Plan
from domain.requests import Cancel
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.cli.support import run
from tests.faults.helpers import new_customer, start, wait_for
from tests.support.serving import served
from tests.support.temporal import dev_server_env, venv_binary
from workers.main import build_worker
from workflows import client_ops, contract
from workflows.connection import data_converter

pytestmark = pytest.mark.temporal

PLAN = Plan(id="codec-monthly", name="Monthly", amount=1500, currency="usd", interval="month",
            interval_count=1, included_credits=10)
COMMENT = "too expensive for Zanzibar Widgets Ltd"
TOKEN = "codec-token-for-tests"
UI = "http://localhost:8080"


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    return await run(sys.executable, "-m", "cli.main", *args, env=env)


def codec_settings() -> CodecSettings:
    return CodecSettings(keys={"k1": base64.b64encode(os.urandom(32)).decode()},
                         current_key_id="k1", endpoint_token=SecretStr(TOKEN), cors_origins=[UI])


async def show(address: str, workflow_id: str, *codec_args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        venv_binary("temporal"), "workflow", "show", "--workflow-id", workflow_id,
        "--output", "json", "--address", address, *codec_args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_history_is_encrypted_and_the_codec_endpoint_reads_it(sqlite_url, localstripe_url):
    codec = codec_settings()
    env = await dev_server_env(converter=data_converter(codec))
    try:
        address = env.client.service_client.config.target_host
        settings = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                            temporal=TemporalSettings(address=address,
                                                      task_queue=f"codec-{uuid.uuid4().hex[:8]}"),
                            codec=codec)
        customer = f"cus_PLAIN{uuid.uuid4().hex[:10]}"
        sub_id = f"sub_{uuid.uuid4().hex[:8]}"
        new_customer(settings, customer, CARD_OK)
        async with build_worker(env.client, settings):
            await start(env.client, settings, sub_id, customer, PLAN)
            await wait_for(env.client, sub_id, lambda s: s.status.value == "active"
                           and s.awaiting_charge is None)
            final = await client_ops.send(env.client, sub_id,
                                          Cancel(mode="immediately", comment=COMMENT))
        assert final.status.value == "canceled" and final.customer_id == customer

        workflow_id = contract.workflow_id(sub_id)
        stored = await show(address, workflow_id)
        assert customer not in stored and COMMENT not in stored
        fields = _decoded_fields(stored)
        assert fields and not any(customer.encode() in f or COMMENT.encode() in f
                                  for f in fields)
        assert base64.b64encode(b"binary/encrypted").decode() in stored
        # the CustomerId search attribute holds a keyed pseudonym; `subs customer-query`
        # prints the filter that finds it (after a rotation too: one value per key)
        keys_env = json.dumps({k: v.get_secret_value() for k, v in codec.keys.items()})
        code, query, err = await run_cli("customer-query", customer, env={
            "SUBS_CODEC__KEYS": keys_env, "SUBS_CODEC__CURRENT_KEY_ID": "k1"})
        assert code == 0 and query.startswith("CustomerId IN (") and customer not in query, err
        found = [w async for w in env.client.list_workflows(query.strip())]
        assert [w.id for w in found] == [workflow_id]

        # The endpoint runs after a rotation: a new current key, the old one kept for reading.
        rotated = codec.model_copy(update={"keys": {**codec.keys, "k2": SecretStr(
            base64.b64encode(os.urandom(32)).decode())}, "current_key_id": "k2"})
        app = create_app(settings.model_copy(update={"migrate_on_start": False,
                                                     "codec": rotated}),
                         temporal_client=env.client)
        async with served(app) as base:
            decoded = await show(address, workflow_id, "--codec-endpoint", f"{base}/codec",
                                 "--codec-auth", f"Bearer {TOKEN}")
            plain = b"".join(_decoded_fields(decoded))
            assert customer.encode() in plain and COMMENT.encode() in plain
            assert base64.b64encode(b"binary/encrypted").decode() not in decoded

            started = json.loads(stored)["events"][0]
            payload = started["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
            async with httpx.AsyncClient(base_url=base) as http:
                r = await http.post("/codec/decode", json={"payloads": [payload]},
                                    headers={"Authorization": f"Bearer {TOKEN}", "Origin": UI,
                                             "X-Namespace": "default"})
                assert r.status_code == 200, r.text
                assert r.headers["access-control-allow-origin"] == UI
                (one,) = r.json()["payloads"]
                assert customer in base64.b64decode(one["data"]).decode()

                r = await http.post("/codec/decode", json={"payloads": [payload]})
                assert r.status_code == 401 and customer not in r.text
                r = await http.options("/codec/decode", headers={
                    "Origin": UI, "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
                assert r.status_code == 204
                assert "authorization" in r.headers["access-control-allow-headers"]
                r = await http.options("/codec/decode", headers={"Origin": "http://evil.test"})
                assert "access-control-allow-origin" not in r.headers
    finally:
        await env.shutdown()


def _decoded_fields(history_json: str) -> list[bytes]:
    """Every base64 field of the export (payload data and metadata, search attributes too),
    decoded: a plaintext id hidden only by base64 would be found there."""
    found: list[bytes] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    found.append(base64.b64decode(value))
                elif key == "metadata" and isinstance(value, dict):
                    found.extend(base64.b64decode(v) for v in value.values()
                                 if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(history_json))
    return found
