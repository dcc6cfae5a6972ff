"""Turn a scenario tx step into signed transaction bytes, as a client would.

Both back-ends use this, so the same step yields the same transaction (bytes
equal on the simulator; on a live run only sealed boxes differ, as they must).
Strings may use ${name} variables: names saved by earlier steps (`save`), and
${fp:TEXT}, the collateral fingerprint of TEXT (e.g. an invoice number).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import crypto
from consortium.errors import ConsortiumError, UserError
from consortium.genesis import Genesis
from consortium.ledger import builders, dcsa
from consortium.ledger.bodies import BY_KIND
from consortium.ledger.fields import Opt, spec
from consortium.ledger.tx import make_tx
from consortium.scenario.schema import ScenarioStep
from consortium.types import Jurisdiction, Role

VAR = re.compile(r"\$\{([^}]+)\}")


@dataclass
class TxBuilder:
    """The scenario's clients: every party's key, nonces, saved variables."""

    genesis: Genesis
    keys: dict[str, crypto.KeyPair]
    seed: int
    base: Path
    deterministic: bool = True  # sealed boxes reproducible (simulator) or fresh (live)
    vars: dict[str, str] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)

    def subst(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return VAR.sub(lambda m: self._var(m.group(1), where), value)
        if isinstance(value, list):
            return [self.subst(v, where) for v in value]
        if isinstance(value, dict):
            return {k: self.subst(v, where) for k, v in value.items()}
        return value

    def _var(self, name: str, where: str) -> str:
        if name.startswith("fp:"):
            return builders.fingerprint(name[3:])
        if name.startswith("example:"):  # the text of a shipped example (e.g. T&T events)
            try:
                return str(dcsa.example(name[len("example:"):]))
            except (OSError, ValueError, KeyError) as exc:
                raise UserError(f"{where}: no example {name[8:]!r} ({exc})") from None
        if name not in self.vars:
            raise UserError(f"{where}: variable ${{{name}}} is not defined (save it in an earlier step)")
        return self.vars[name]

    def build(self, step: ScenarioStep, source: str) -> bytes:
        """Signed tx bytes for `step` (UserError naming the step and field on bad input)."""
        where = step.where(source)
        f = step.fields
        kind, actor = f["tx"], f["as"]
        if actor not in self.keys:
            raise UserError(f"{where}: field 'as' names no party or member ({actor!r})")
        body = self.subst(dict(f.get("body", {})), where)
        try:
            body = self._helpers(kind, f, body, where)
            body = {**_absent_optionals(kind, body), **body}
        except (ConsortiumError, ValueError, KeyError) as exc:
            raise UserError(f"{where}: cannot build the {kind} body ({exc})") from None
        signer_id = f.get("forge", actor)  # forge = "<other id>": signed with someone else's key
        if signer_id not in self.keys:
            raise UserError(f"{where}: field 'forge' names no key ({signer_id!r})")
        nonce = self.nonces.get(actor, 0)
        self.nonces[actor] = nonce + 1
        try:
            return make_tx(kind, actor, body, crypto.Signer(self.keys[signer_id]), nonce,
                           self.genesis.chain_id, validate=not f.get("unchecked", False))
        except ConsortiumError as exc:
            raise UserError(f"{where}: the ledger's client checks refuse this tx ({exc}); "
                            "set unchecked = true to send it anyway") from None

    # ------------------------------------------------------------ body helpers

    def _helpers(self, kind: str, f: dict[str, Any], body: dict[str, Any], where: str) -> dict[str, Any]:
        if kind == "ISSUE" and "document" in f:
            doc = self._document(self.subst(f["document"], where), where)
            if "reference" in f:
                doc = builders.with_reference(doc, self.subst(f["reference"], where))
            body = {**builders.issue_body(doc, self.subst(f["issue_to"], where),
                                          consignee=self.subst(f.get("consignee"), where),
                                          endorsee=self.subst(f.get("endorsee"), where),
                                          supersedes=self.subst(f.get("supersedes"), where)), **body}
            if "save" in f:
                self.vars[f["save"]] = builders.ebl_id(doc)
        elif kind == "DATA_ATTEST" and "payload" in f:
            payload = self.subst(f["payload"], where).encode()
            salt = crypto.digest(b"salt:%d:" % self.seed + body["data_id"].encode())
            body = {"salted_hash": builders.salted_hash(salt, payload), "size": len(payload), **body}
        elif kind == "DATA_SHARE" and "payload" in f:
            payload = self.subst(f["payload"], where).encode()
            recipient = body["recipient"]
            regulator = self._regulator_key_for(recipient)
            seeds = None
            if self.deterministic:
                sid = body["share_id"].encode()
                seeds = (crypto.digest(b"seal0:%d:" % self.seed + sid), crypto.digest(b"seal1:%d:" % self.seed + sid))
            body = builders.share_body(body["share_id"], body["data_id"], recipient, body["purpose"], payload,
                                       self._public_key(recipient), regulator, seeds)
        elif kind == "REGISTER_PARTY" and f.get("new_party_key"):
            pid = body["party_id"]
            kp = crypto.keypair_from_entropy(b"party:%d:" % self.seed + pid.encode())
            self.keys[pid] = kp
            body = {"public_key": kp.public_key, **body}
        return body

    def _document(self, spec: str, where: str) -> dict[str, Any]:
        if spec.startswith("example:"):
            try:
                return builders.example_document(spec[len("example:"):])
            except (OSError, ValueError, KeyError, ConsortiumError) as exc:
                raise UserError(f"{where}: field 'document': no example {spec!r} ({exc})") from None
        path = (self.base / spec).resolve()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{where}: field 'document': cannot read {path} ({exc})") from None
        if not isinstance(doc, dict):
            raise UserError(f"{where}: field 'document': {path} is not a JSON object")
        return doc

    def _public_key(self, ident: str) -> bytes:
        key = self.genesis.keys().get(ident) or (self.keys[ident].public_key if ident in self.keys else None)
        if key is None:
            raise KeyError(f"no public key for {ident!r}")
        return key

    def _regulator_key_for(self, recipient: str) -> bytes | None:
        """Shares to Hong Kong banks are also sealed to the HK regulator (HKMA)."""
        m = self.genesis.member(recipient)
        hk_bank = m is not None and m.role == Role.BANK and m.jurisdiction == Jurisdiction.HK
        regulator = next((x for x in self.genesis.members if x.role == Role.REGULATOR), None)
        return regulator.public_key if hk_bank and regulator is not None else None


def _absent_optionals(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: an optional body field left out is sent as nil."""
    cls = BY_KIND.get(kind)
    if cls is None:
        return {}
    return {name: None for name, check in spec(cls) if name not in body and isinstance(check, Opt)}
