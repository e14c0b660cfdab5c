"""Temporal's remote codec protocol, so operators can read encrypted payloads:
``temporal workflow show --codec-endpoint https://api.example.com/codec --codec-auth "Bearer
<token>"`` and the Web UI (its codec endpoint setting) POST ``{"payloads": [...]}`` (Payload
protos in JSON, bytes base64) to ``/codec/decode`` or ``/codec/encode`` and get the same back.

Served by the API (the one published port) only when the codec has keys and
``SUBS_CODEC__ENDPOINT_TOKEN`` is set; otherwise 404, so no deployment decrypts for anyone by
accident. The token comes as ``Authorization: Bearer`` (the CLI's ``--codec-auth``) or, for the
Web UI, which can send no header of its own choosing, in the path: its codec endpoint is
``https://api.example.com/codec/t/<token>`` (the access log writes the route, not the path).
Browsers get CORS answers for the origins in ``SUBS_CODEC__CORS_ORIGINS`` only.
"""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import SettingsDep, require_token
from api.problems import ApiProblem
from config.settings import CodecSettings
from workflows.codec import UnknownKeyError
from workflows.connection import payload_codec

router = APIRouter(prefix="/codec", include_in_schema=False)

_ALLOWED_HEADERS = "authorization, content-type, x-namespace"


def _cors(request: Request, codec: CodecSettings) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin is None or origin not in codec.cors_origins:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600", "Vary": "Origin"}


def _served(codec: CodecSettings) -> None:
    if not codec.on or codec.endpoint_token is None:
        raise ApiProblem(404, "not-found", "the codec endpoint is off: it needs SUBS_CODEC__KEYS "
                         "and SUBS_CODEC__ENDPOINT_TOKEN")


@router.options("/{operation}")
@router.options("/t/{token}/{operation}")
async def preflight(operation: str, request: Request, settings: SettingsDep) -> Response:
    """Browsers ask before a cross-origin POST with Authorization; no token on this one."""
    _served(settings.codec)
    return Response(status_code=204, headers=_cors(request, settings.codec))


@router.post("/{operation}")
async def transcode(operation: str, request: Request, settings: SettingsDep) -> Response:
    _served(settings.codec)
    require_token(request, settings.codec.endpoint_token, "SUBS_CODEC__ENDPOINT_TOKEN")
    return await _transcode(operation, request, settings.codec)


@router.post("/t/{token}/{operation}")
async def transcode_for_the_ui(token: str, operation: str, request: Request,
                               settings: SettingsDep) -> Response:
    _served(settings.codec)
    expected = settings.codec.endpoint_token
    assert expected is not None  # _served checked it
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise ApiProblem(401, "unauthenticated", "wrong token in the codec endpoint's path",
                         code="invalid_operator_token")
    return await _transcode(operation, request, settings.codec)


async def _transcode(operation: str, request: Request, codec_settings: CodecSettings) -> Response:
    if operation not in ("encode", "decode"):
        raise ApiProblem(404, "not-found", f"no codec operation {operation!r}: encode or decode")
    payloads = Payloads()
    try:
        json_format.Parse(await request.body(), payloads)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise ApiProblem(422, "validation-error", f'expected {{"payloads": [...]}}: {exc}',
                         code="invalid_payloads") from None
    codec = payload_codec(codec_settings)
    assert codec is not None  # _served checked the keys
    try:
        done = await (codec.encode if operation == "encode" else codec.decode)(payloads.payloads)
    except UnknownKeyError as exc:
        raise ApiProblem(422, "validation-error", str(exc), code="unknown_key_id") from None
    except Exception:  # noqa: BLE001 - a tampered or foreign payload (cryptography's InvalidTag)
        raise ApiProblem(422, "validation-error", "a payload does not decrypt with its key",
                         code="undecryptable_payload") from None
    body = json.dumps(json_format.MessageToDict(Payloads(payloads=done)))
    return Response(body, media_type="application/json", headers=_cors(request, codec_settings))
