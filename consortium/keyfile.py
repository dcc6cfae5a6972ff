"""Key files on disk: written 0600, read with one clear error per problem.

Format: a small TOML file
    kind = "ed25519"
    seed = "<64 hex chars>"
    public_key = "<64 hex chars>"
The public key is stored too, so that a corrupt seed is detected on load.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from consortium.crypto import KeyPair, keypair_from_entropy, keypair_from_seed
from consortium.errors import UserError


def generate() -> KeyPair:
    return keypair_from_entropy(os.urandom(32))


def render(keypair: KeyPair) -> str:
    return (
        'kind = "ed25519"\n'
        f'seed = "{keypair.seed.hex()}"\n'
        f'public_key = "{keypair.public_key.hex()}"\n'
    )


def save(path: Path, keypair: KeyPair) -> None:
    """Write atomically (temp file + rename) with mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, render(keypair).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load(path: Path) -> KeyPair:
    """Load a key file; UserError naming the file and field on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: key file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: key file cannot be read ({exc.__class__.__name__})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: key file is not valid TOML ({exc})") from None
    if data.get("kind") != "ed25519":
        raise UserError(f"{path}: field 'kind' must be \"ed25519\"")
    seed = _hex32(path, data, "seed")
    public_key = _hex32(path, data, "public_key")
    keypair = keypair_from_seed(seed)
    if keypair.public_key != public_key:
        raise UserError(f"{path}: field 'public_key' does not match field 'seed' (corrupt key file)")
    return keypair


def _hex32(path: Path, data: dict[str, object], field: str) -> bytes:
    value = data.get(field)
    if not isinstance(value, str):
        raise UserError(f"{path}: field '{field}' is missing or not a string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise UserError(f"{path}: field '{field}' is not hex") from None
    if len(raw) != 32:
        raise UserError(f"{path}: field '{field}' must be 32 bytes (64 hex chars)")
    return raw
