"""AES-256-GCM encryption of personal data and secrets, with a key ring.

A ciphertext is the text ``v1.<key id>.<base64url(nonce || ciphertext+tag)>``.
The key id lets a rotation add a new primary key while rows written under
older keys stay readable until they are re-encrypted. Every value is bound to
where it lives (the *context*, e.g. ``users.email:<id>``) as associated data,
so a ciphertext copied to another row or column does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PREFIX = "v1"


class KeyRingError(ValueError):
    """The configured keys are unusable, or a ciphertext cannot be opened."""


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError("invalid base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def generate_key() -> str:
    """A new random 256-bit key, base64url encoded."""
    return _b64encode(AESGCM.generate_key(bit_length=256))


@dataclass
class KeyRing:
    """Keys by id; ``primary`` encrypts, every key decrypts."""

    keys: dict[str, bytes]
    primary: str
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyRingError(f"primary key {self.primary!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyRingError(f"key id {key_id!r} must be 1-32 of [A-Za-z0-9_-]")
            if len(key) != 32:
                raise KeyRingError(f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self.keys.items()}

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse ``id1:base64key,id2:base64key``; the first entry is the primary."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise KeyRingError("each key must be written 'id:base64key'")
            keys[key_id] = _b64decode(encoded)
            order.append(key_id)
        if not order:
            raise KeyRingError("no encryption key configured")
        return cls(keys=keys, primary=order[0])

    def serialize(self) -> str:
        ordered = [self.primary, *(k for k in self.keys if k != self.primary)]
        return ",".join(f"{k}:{_b64encode(self.keys[k])}" for k in ordered)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._ciphers[self.primary].encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{_PREFIX}.{self.primary}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, context: str) -> str:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise KeyRingError("not an orchestrator ciphertext")
        _, key_id, payload = parts
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyRingError(f"ciphertext uses unknown key {key_id!r}")
        blob = _b64decode(payload)
        try:
            plain = cipher.decrypt(blob[:12], blob[12:], context.encode("utf-8"))
        except InvalidTag as exc:
            raise KeyRingError("ciphertext does not authenticate (wrong key or context)") from exc
        return plain.decode("utf-8")

    def key_id_of(self, token: str) -> str:
        parts = token.split(".")
        return parts[1] if len(parts) == 3 else ""


def load_or_create_keyring(path: Path) -> KeyRing:
    """Personal mode: keep a generated key ring in a 0600 file under the data dir."""
    if path.exists():
        data = json.loads(path.read_text())
        return KeyRing.parse(str(data["keys"]))
    ring = KeyRing.parse(f"k1:{generate_key()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": ring.serialize()}, handle)
    return ring
