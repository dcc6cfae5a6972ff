"""Ed25519 signatures, SHA-256 digests and sealed boxes (PyNaCl).

Pure: no file or clock access. Key files live in `consortium.keyfile`.

One key pair per member or party: the Ed25519 signing key also yields the
Curve25519 key used for sealed boxes (libsodium's documented conversion), so a
party publishes a single public key and can still receive confidential payloads.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from consortium import limits
from consortium.errors import LocalError, RemoteError


def digest(data: bytes) -> bytes:
    """SHA-256 of `data`: the hash used for blocks, txs, documents and chains."""
    return _sha256(data).digest()


_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An Ed25519 signing key and its public key, 32 bytes each."""

    seed: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        assert len(self.seed) == 32 and len(self.public_key) == limits.public_key_bytes

    def __repr__(self) -> str:  # never print the seed by accident
        return f"KeyPair(public_key={self.public_key.hex()})"


def keypair_from_seed(seed: bytes) -> KeyPair:
    if len(seed) != 32:
        raise LocalError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
    signing = nacl.signing.SigningKey(seed)
    return KeyPair(seed=seed, public_key=bytes(signing.verify_key))


def keypair_from_entropy(entropy: bytes) -> KeyPair:
    """A key pair from caller-supplied entropy (os.urandom in the CLI, a seeded
    PRNG in the simulator), so that this module reads no global randomness."""
    return keypair_from_seed(digest(b"consortium/key/v1" + entropy))


class Signer:
    """Signs with one key; caches the PyNaCl object (construction is not free).

    Under `memoised` (a Simulation), every signature it makes is remembered as valid
    under the public key derived from its seed: Ed25519 is correct (a signature made
    with a seed verifies under that seed's public key), so the memo learns at signing
    time what the first receiver's check would have found. Pure: a forged or altered
    frame is another triple and is still checked (and fails)."""

    __slots__ = ("_secret", "_own", "public_key")

    def __init__(self, keypair: KeyPair) -> None:
        # libsodium's own key expansion (what nacl.signing.SigningKey holds), used without
        # SigningKey's wrapping of every signature in a SignedMessage
        self._own, self._secret = nacl.bindings.crypto_sign_seed_keypair(keypair.seed)  # derived, not trusted
        self.public_key = keypair.public_key

    def sign(self, message: bytes) -> bytes:
        sig: bytes = nacl.bindings.crypto_sign(message, self._secret)[: limits.signature_bytes]
        memo = _memo.get()
        if memo is not None:
            memo.remember((self._own, message, sig))
        return sig


_verify_keys: dict[bytes, nacl.signing.VerifyKey] = {}


class VerifyMemo:
    """(key, message, signature) triples already verified valid, for one owner (a
    Simulation, whose n nodes verify the same certificate signatures n times). A pure
    memo: Ed25519 verification is a function of the triple, so a remembered success
    cannot change any result, and a forged or altered signature is another triple.
    Bounded: forgets everything past limits.verify_memo_triples_max."""

    __slots__ = ("valid",)

    def __init__(self) -> None:
        self.valid: set[tuple[bytes, bytes, bytes]] = set()

    def remember(self, triple: tuple[bytes, bytes, bytes]) -> None:
        """`triple` is a valid signature (checked, or made by a Signer of that key)."""
        if len(self.valid) >= limits.verify_memo_triples_max:
            self.valid.clear()
        self.valid.add(triple)


_memo: contextvars.ContextVar[VerifyMemo | None] = contextvars.ContextVar("verify_memo", default=None)


@contextlib.contextmanager
def memoised(memo: VerifyMemo) -> Iterator[None]:
    """Within this block (this thread or task only), `verify` consults and fills `memo`."""
    token = _memo.set(memo)
    try:
        yield
    finally:
        _memo.reset(token)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message`.

    Never raises for malformed inputs from a peer: a wrong-length key or
    signature is simply not valid."""
    memo = _memo.get()
    if memo is None:
        return _verify(public_key, message, signature)
    triple = (public_key, message, signature)
    if triple in memo.valid:
        return True
    ok = _verify(public_key, message, signature)
    if ok:
        memo.remember(triple)
    return ok


def _verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != limits.public_key_bytes or len(signature) != limits.signature_bytes:
        return False
    key = _verify_keys.get(public_key)
    if key is None:
        try:
            key = nacl.signing.VerifyKey(public_key)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            return False
        if len(_verify_keys) < 4 * limits.parties_max:  # bounded cache, keys are few
            _verify_keys[public_key] = key
    try:
        key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def seal(recipient_public_key: bytes, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` so that only the holder of the recipient's Ed25519
    key can open it (anonymous sealed box over the converted Curve25519 key).

    Uses libsodium's own randomness for the ephemeral key: sealing is an act
    of a client, never of the replicated state machine."""
    try:
        curve = nacl.signing.VerifyKey(recipient_public_key).to_curve25519_public_key()
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise RemoteError("BAD_KEY", "recipient public key is not an Ed25519 key") from exc
    return bytes(nacl.public.SealedBox(curve).encrypt(plaintext))


def unseal(keypair: KeyPair, sealed: bytes) -> bytes:
    """Open a sealed box addressed to `keypair`; RemoteError if it is not ours."""
    curve = nacl.signing.SigningKey(keypair.seed).to_curve25519_private_key()
    try:
        return bytes(nacl.public.SealedBox(curve).decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise RemoteError("NOT_RECIPIENT", "sealed payload cannot be opened with this key") from exc
