"""Keys, signatures and sealed boxes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import crypto, keyfile
from consortium.errors import RemoteError, UserError


@given(st.binary(max_size=64), st.binary(max_size=200))
def test_sign_verify(entropy: bytes, message: bytes) -> None:
    kp = crypto.keypair_from_entropy(entropy)
    sig = crypto.Signer(kp).sign(message)
    assert crypto.verify(kp.public_key, message, sig)
    assert not crypto.verify(kp.public_key, message + b"!", sig)
    other = crypto.keypair_from_entropy(entropy + b"other")
    assert not crypto.verify(other.public_key, message, sig)


@given(st.binary(max_size=40), st.binary(max_size=100), st.binary(max_size=100))
def test_verify_never_raises_on_garbage(key: bytes, msg: bytes, sig: bytes) -> None:
    assert crypto.verify(key, msg, sig) in (True, False)


def test_sealed_box_only_recipient_opens() -> None:
    alice = crypto.keypair_from_entropy(b"a")
    bob = crypto.keypair_from_entropy(b"b")
    box = crypto.seal(alice.public_key, b"mainland invoice data")
    assert crypto.unseal(alice, box) == b"mainland invoice data"
    with pytest.raises(RemoteError):
        crypto.unseal(bob, box)


def test_key_file_round_trip_and_permissions(tmp_path: Path) -> None:
    kp = keyfile.generate()
    path = tmp_path / "k" / "a.key"
    keyfile.save(path, kp)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keyfile.load(path) == kp
    assert kp.seed.hex() not in repr(kp)


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "missing"),
        ("not toml = = =", "not valid TOML"),
        ('kind = "rsa"\n', "'kind'"),
        ('kind = "ed25519"\nseed = "zz"\npublic_key = "00"\n', "'seed' is not hex"),
        ('kind = "ed25519"\nseed = "00"\npublic_key = "00"\n', "'seed' must be 32 bytes"),
    ],
)
def test_bad_key_files_give_one_clear_error(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "bad.key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as info:
        keyfile.load(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_corrupt_seed_is_detected(tmp_path: Path) -> None:
    kp = keyfile.generate()
    path = tmp_path / "a.key"
    keyfile.save(path, kp)
    text = path.read_text()
    flipped = ("1" if kp.seed.hex()[0] != "1" else "2") + kp.seed.hex()[1:]
    path.write_text(text.replace(kp.seed.hex(), flipped))
    with pytest.raises(UserError, match="does not match"):
        keyfile.load(path)
