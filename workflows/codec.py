"""AES-GCM encryption of every Temporal payload (workflow inputs, results, signals, updates,
activity arguments, memos...), so the server's history holds no customer ids or comments.

Each encrypted payload is a whole serialized inner payload (metadata and data), encrypted with
a fresh 12-byte nonce; its own metadata says only ``binary/encrypted`` and the key id. Encoding
uses the current key; decoding uses whichever configured key the payload names, so a rotation
keeps old histories readable. Payloads that are not encrypted (written before the codec was
turned on) decode as they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12


class UnknownKeyError(ValueError):
    """A payload names a key this process was not given: add it to SUBS_CODEC__KEYS."""


class AesGcmCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current key {current_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._keys = dict(keys)
        self._current = current_key_id

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], current_key_id: str) -> AesGcmCodec:
        return cls({k: base64.b64decode(v) for k, v in keys.items()}, current_key_id)

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE)
        key_id = self._current.encode()
        # The key id is authenticated data: a payload moved under another id fails to decrypt.
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(key_id.decode())
        if cipher is None:
            raise UnknownKeyError(f"payload encrypted with unknown key id {key_id.decode()!r}")
        nonce, sealed = payload.data[:_NONCE], payload.data[_NONCE:]
        inner = Payload()
        inner.ParseFromString(cipher.decrypt(nonce, sealed, key_id))
        return inner

    def index(self, value: str, key_id: str | None = None) -> str:
        """A keyed pseudonym for a search attribute (stored in clear by the server): equal
        values match, the value cannot be read back without the key."""
        key_id = key_id or self._current
        mac = hmac.new(self._keys[key_id], b"search-attribute\0" + value.encode(),
                       hashlib.sha256).hexdigest()[:32]
        return f"{key_id}:{mac}"

    def index_all(self, value: str) -> list[str]:
        """The pseudonyms under every key: a subscription keeps the one it started with."""
        return [self.index(value, key_id) for key_id in sorted(self._keys)]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]


def customer_index(client: Client, customer_id: str) -> str | None:
    """What the CustomerId search attribute holds for this client: None (the id itself) when
    its payloads are not encrypted."""
    codec = client.data_converter.payload_codec
    return codec.index(customer_id) if isinstance(codec, AesGcmCodec) else None
