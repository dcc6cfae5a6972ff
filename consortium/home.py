"""A consortium home directory: genesis, keys and broker credentials.

    HOME/genesis.json             the genesis (members, parties, params, public keys)
    HOME/keys/<id>.key            one Ed25519 key per member and per party (0600)
    HOME/broker/credentials.json  per-member MQTT username/password (0600)
    HOME/broker/acl.json          topic permissions per member (input for mosquitto)
    HOME/nodes/<id>/              a node's data directory (created by the node)

`init` builds everything in a temporary sibling directory and renames it into
place, so an interrupted or failed init leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from consortium import keyfile, limits
from consortium.config import load_consortium
from consortium.crypto import KeyPair
from consortium.errors import UserError
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, Genesis, from_dict, keyed_genesis

GENESIS_FILE = "genesis.json"


def topic_root(chain_id: str) -> str:
    return f"consortium/{chain_id}"


def acl_for(chain_id: str, member_id: str) -> dict[str, list[str]]:
    """A member may publish only under its own id and read everything of the chain."""
    root = topic_root(chain_id)
    return {"write": [f"{root}/{member_id}/#"], "read": [f"{root}/#"]}


def init_home(home: Path, members_dir: Path, chain_id: str, *, force: bool,
              genesis_time_ms: int = DEFAULT_GENESIS_TIME_MS) -> Genesis:
    _check_chain_id(chain_id)
    if home.exists() and any(home.iterdir()) and not force:
        raise UserError(f"{home}: already exists and is not empty (use --force to replace it)")
    consortium = load_consortium(members_dir)
    genesis, keys = keyed_genesis(chain_id, genesis_time_ms, consortium.members, consortium.parties,
                                  lambda _ident: keyfile.generate())
    members = genesis.members

    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{home.name}.init-", dir=home.parent))
    except OSError as exc:
        raise UserError(f"{home}: cannot create the home here ({exc.strerror or exc})") from None
    try:
        _write(tmp / GENESIS_FILE, json.dumps(genesis.to_dict(), indent=2) + "\n", 0o644)
        for ident, kp in keys.items():
            keyfile.save(tmp / "keys" / f"{ident}.key", kp)
        creds = {m.id: {"username": m.id, "password": secrets.token_urlsafe(24)} for m in members}
        _write(tmp / "broker" / "credentials.json", json.dumps(creds, indent=2) + "\n", 0o600)
        acl = {m.id: acl_for(chain_id, m.id) for m in members}
        _write(tmp / "broker" / "acl.json", json.dumps(acl, indent=2) + "\n", 0o644)
        _replace_dir(tmp, home)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return genesis


def _check_chain_id(chain_id: str) -> None:
    ok = 1 <= len(chain_id) <= limits.chain_id_bytes_max and all(
        c.isascii() and (c.isalnum() or c in "-_.") for c in chain_id)
    if not ok:
        raise UserError(f"--chain-id: {chain_id!r} must be 1..{limits.chain_id_bytes_max} "
                        "ASCII letters, digits, '-', '_' or '.' (it becomes an MQTT topic level)")


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def work_dirs(home: Path) -> list[Path]:
    """The siblings init_home makes while it builds or replaces `home` (`.NAME.init-*`,
    `.NAME.old-*`): an interrupt can land between making one and the cleanup that owns
    it, so whoever removes a temporary home removes these too."""
    return [p for pat in (f".{home.name}.init-*", f".{home.name}.old-*") for p in home.parent.glob(pat)]


def _replace_dir(new: Path, home: Path) -> None:
    if home.exists():
        old = home.with_name(f".{home.name}.old-{secrets.token_hex(4)}")
        os.replace(home, old)
        os.replace(new, home)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, home)


def load_genesis(home: Path) -> Genesis:
    path = home / GENESIS_FILE
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no genesis here (run `consortium init --home {home}` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read genesis ({exc})") from None
    return from_dict(data, source=str(path))


def key_path(home: Path, ident: str) -> Path:
    return home / "keys" / f"{ident}.key"


def load_key(home: Path, ident: str, genesis: Genesis) -> KeyPair:
    """Load a member's or party's key and check it matches the genesis."""
    kp = keyfile.load(key_path(home, ident))
    expected = genesis.keys().get(ident)
    if expected is None:
        raise UserError(f"{ident!r} is not a member or party of chain {genesis.chain_id}")
    if kp.public_key != expected:
        raise UserError(f"{key_path(home, ident)}: key does not match the genesis public key of {ident!r}")
    return kp


def load_credentials(home: Path) -> dict[str, dict[str, str]]:
    path = home / "broker" / "credentials.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read broker credentials ({exc})") from None
    return data  # type: ignore[no-any-return]
