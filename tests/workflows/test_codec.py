"""The AES-GCM payload codec (workflows.codec) and its settings: round trip, rotation by key id,
tampering refused, plain payloads passed through, search-attribute pseudonyms."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from config.settings import CodecSettings, Settings
from workflows.codec import ENCODING, KEY_ID, AesGcmCodec, UnknownKeyError
from workflows.connection import data_converter


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def settings(keys: dict[str, str], current: str) -> CodecSettings:
    return CodecSettings(keys=keys, current_key_id=current)


async def test_payloads_are_encrypted_and_decode_back():
    converter = data_converter(settings({"k1": key()}, "k1"))
    (plain,) = converter.payload_converter.to_payloads(["cus_SECRET and a comment"])
    (sealed,) = await converter.payload_codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"cus_SECRET" not in sealed.SerializeToString()
    (back,) = await converter.payload_codec.decode([sealed])
    assert back == plain
    # the same value encrypts differently each time (a fresh nonce)
    (again,) = await converter.payload_codec.encode([plain])
    assert again.data != sealed.data


async def test_rotation_old_payloads_still_decode_new_ones_use_the_new_key():
    old, new = key(), key()
    before = data_converter(settings({"2026-01": old}, "2026-01")).payload_codec
    (written,) = await before.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])

    after = data_converter(settings({"2026-01": old, "2026-06": new}, "2026-06")).payload_codec
    (read,) = await after.decode([written])
    assert read.data == b"1"
    (fresh,) = await after.encode([read])
    assert fresh.metadata[KEY_ID] == b"2026-06"

    without_old = data_converter(settings({"2026-06": new}, "2026-06")).payload_codec
    with pytest.raises(UnknownKeyError, match="2026-01"):
        await without_old.decode([written])


async def test_tampered_or_relabelled_payloads_are_refused():
    a, b = key(), key()
    codec = AesGcmCodec.from_base64({"a": a, "b": b}, "a")
    (sealed,) = await codec.encode([Payload(data=b"secret")])
    flipped = Payload(metadata=sealed.metadata,
                      data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"b"}, data=sealed.data)
    with pytest.raises(InvalidTag):
        await codec.decode([relabelled])


async def test_plain_payloads_pass_through_so_history_from_before_the_codec_reads():
    codec = AesGcmCodec.from_base64({"k": key()}, "k")
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"cus_1"')
    assert await codec.decode([plain]) == [plain]


def test_off_without_keys_is_the_plain_pydantic_converter():
    from temporalio.contrib.pydantic import pydantic_data_converter
    assert data_converter() is pydantic_data_converter
    assert data_converter(Settings(_env_file=None).codec) is pydantic_data_converter


def test_search_attribute_pseudonym_is_stable_per_key_and_hides_the_id():
    k1, k2 = key(), key()
    codec = AesGcmCodec.from_base64({"k1": k1, "k2": k2}, "k2")
    tag = codec.index("cus_SECRET")
    assert tag.startswith("k2:") and "SECRET" not in tag
    assert tag == AesGcmCodec.from_base64({"k2": k2}, "k2").index("cus_SECRET")
    assert codec.index("cus_OTHER") != tag
    assert codec.index_all("cus_SECRET") == [codec.index("cus_SECRET", "k1"), tag]


@pytest.mark.parametrize(("keys", "current", "message"), [
    ({"k": "not base64!"}, "k", "not base64"),
    ({"k": base64.b64encode(b"short").decode()}, "k", "16, 24 or 32 bytes"),
    ({"k": base64.b64encode(bytes(32)).decode()}, "other", "CURRENT_KEY_ID must name"),
    ({}, "k", "KEYS is empty"),
])
def test_bad_codec_settings_name_the_setting(keys, current, message):
    with pytest.raises(ValidationError, match=message):
        CodecSettings(keys=keys, current_key_id=current)


def test_keys_come_from_the_environment_as_json(monkeypatch):
    k = key()
    monkeypatch.setenv("SUBS_CODEC__KEYS", f'{{"2026-01": "{k}"}}')
    monkeypatch.setenv("SUBS_CODEC__CURRENT_KEY_ID", "2026-01")
    codec = Settings(_env_file=None).codec
    assert codec.on and codec.keys["2026-01"].get_secret_value() == k
    assert k not in repr(codec)  # secrets stay out of logs and tracebacks


async def test_failure_messages_are_encrypted_and_restored_for_the_workflow():
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(settings({"k1": key()}, "k1"))
    failure = Failure()
    await converter.encode_failure(
        ApplicationError("card of cus_SECRET declined", {"customer": "cus_SECRET"},
                         type="CardDeclined", non_retryable=True), failure)
    assert b"cus_SECRET" not in failure.SerializeToString()
    back = await converter.decode_failure(failure)
    assert isinstance(back, ApplicationError) and back.message == "card of cus_SECRET declined"
    assert back.type == "CardDeclined" and back.details == ({"customer": "cus_SECRET"},)
