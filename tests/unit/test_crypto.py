"""The AES-256-GCM key ring."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator_ext.security.crypto import KeyRing, KeyRingError, generate_key, load_or_create_keyring


def test_round_trip_and_context_binding() -> None:
    ring = KeyRing.parse(f"k1:{generate_key()}")
    token = ring.encrypt("ada@example.org", "users.email:1")
    assert token.startswith("v1.k1.")
    assert "ada" not in token
    assert ring.decrypt(token, "users.email:1") == "ada@example.org"
    with pytest.raises(KeyRingError, match="authenticate"):
        ring.decrypt(token, "users.email:2")


def test_nonces_differ() -> None:
    ring = KeyRing.parse(f"k1:{generate_key()}")
    assert ring.encrypt("same", "c") != ring.encrypt("same", "c")


def test_rotation_keeps_old_ciphertexts_readable() -> None:
    old_key, new_key = generate_key(), generate_key()
    old = KeyRing.parse(f"old:{old_key}")
    token = old.encrypt("secret", "ctx")
    rotated = KeyRing.parse(f"new:{new_key},old:{old_key}")
    assert rotated.primary == "new"
    assert rotated.decrypt(token, "ctx") == "secret"
    assert rotated.key_id_of(rotated.encrypt("secret", "ctx")) == "new"
    assert KeyRing.parse(rotated.serialize()).keys == rotated.keys


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no encryption key"),
        ("nokey", "id:base64key"),
        ("k1:c2hvcnQ", "32 bytes"),
        ("bad id:" + "A" * 43, "key id"),
        ("k1:!!!", "base64"),
    ],
)
def test_bad_key_rings(spec: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.parse(spec)


def test_unknown_key_and_garbage() -> None:
    ring = KeyRing.parse(f"a:{generate_key()}")
    other = KeyRing.parse(f"b:{generate_key()}")
    with pytest.raises(KeyRingError, match="unknown key"):
        ring.decrypt(other.encrypt("x", "c"), "c")
    with pytest.raises(KeyRingError, match="not an orchestrator"):
        ring.decrypt("plaintext", "c")


def test_generated_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = load_or_create_keyring(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_keyring(path)
    assert again.decrypt(ring.encrypt("x", "c"), "c") == "x"
