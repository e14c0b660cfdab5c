"""/codec refuses what it should: off without keys or token, the token required, bad bodies and
payloads under an unknown key answered 422 (the full protocol: test_encrypted_history.py)."""

from __future__ import annotations

import base64
import os

import httpx
from pydantic import SecretStr

from api.app import create_app
from config.settings import CodecSettings, Settings

AUTH = {"Authorization": "Bearer t0ken"}


def client(sqlite_url: str, codec: CodecSettings) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=sqlite_url, codec=codec, _env_file=None))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def keys(*ids: str) -> dict[str, SecretStr]:
    return {i: SecretStr(base64.b64encode(os.urandom(32)).decode()) for i in ids}


async def test_off_unless_keys_and_token_are_set(sqlite_url):
    for codec in (CodecSettings(), CodecSettings(keys=keys("k"), current_key_id="k"),
                  CodecSettings(endpoint_token=SecretStr("t0ken"))):
        async with client(sqlite_url, codec) as http:
            r = await http.post("/codec/decode", json={"payloads": []}, headers=AUTH)
            assert r.status_code == 404 and "SUBS_CODEC__ENDPOINT_TOKEN" in r.text


async def test_token_body_and_key_checks(sqlite_url):
    on = CodecSettings(keys=keys("k"), current_key_id="k", endpoint_token=SecretStr("t0ken"))
    async with client(sqlite_url, on) as http:
        body = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                              "data": base64.b64encode(b'"cus_1"').decode()}]}
        assert (await http.post("/codec/encode", json=body)).status_code == 401
        bad = await http.post("/codec/encode", json=body, headers={"Authorization": "Bearer no"})
        assert bad.status_code == 401
        assert (await http.post("/codec/rot13", json=body, headers=AUTH)).status_code == 404
        r = await http.post("/codec/decode", content=b"{nope", headers=AUTH)
        assert r.status_code == 422 and r.json()["code"] == "invalid_payloads"

        sealed = (await http.post("/codec/encode", json=body, headers=AUTH)).json()
        assert b"cus_1" not in base64.b64decode(sealed["payloads"][0]["data"])
        back = (await http.post("/codec/decode", json=sealed, headers=AUTH)).json()
        assert back == body

    other = CodecSettings(keys=keys("j"), current_key_id="j", endpoint_token=SecretStr("t0ken"))
    async with client(sqlite_url, other) as http:
        r = await http.post("/codec/decode", json=sealed, headers=AUTH)
        assert r.status_code == 422 and r.json()["code"] == "unknown_key_id"


async def test_the_web_ui_route_takes_the_token_in_the_path_and_never_logs_it(sqlite_url):
    import io
    import logging

    from api.observability import access_log
    from workflows.logs import JsonFormatter

    on = CodecSettings(keys=keys("k"), current_key_id="k", endpoint_token=SecretStr("t0ken"),
                       cors_origins=["http://127.0.0.1:8080"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    try:
        async with client(sqlite_url, on) as http:
            ui = {"Origin": "http://127.0.0.1:8080", "X-Namespace": "default"}
            r = await http.post("/codec/t/t0ken/encode", json={"payloads": []}, headers=ui)
            assert r.status_code == 200 and r.json() == {}
            assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
            r = await http.options("/codec/t/t0ken/decode", headers=ui)
            assert r.status_code == 204 and r.headers["access-control-allow-origin"]
            r = await http.post("/codec/t/wrong/decode", json={"payloads": []}, headers=ui)
            assert r.status_code == 401
    finally:
        access_log.removeHandler(handler)
    assert "/codec/t/{token}/{operation}" in stream.getvalue()
    assert "t0ken" not in stream.getvalue()
