"""Cross-border data: attestation by SDB, consent by the owner, sealed shares.

Theory of operation
    DATA_ATTEST     SDB          salted hash + metadata of a mainland party's data
    CONSENT_GRANT   data owner   for one named bank (or HKMA) and one purpose
    CONSENT_REVOKE  data owner   ends it; the sealed copies it allowed are erased
    DATA_SHARE      owner or SDB the payload sealed to the recipient (client-side,
                                 consortium.crypto.seal); needs a live consent

HKMA's entitlement (stated rule): HKMA reads every record of the ledger in
the clear (none holds mainland personal data) and, as supervisor of Hong Kong
banks, the payloads shared to a Hong Kong bank: such a share must carry a
second copy sealed to HKMA (`regulator_sealed`). Payloads shared to mainland
banks carry no HKMA copy (HKMA has no supervisory claim there); HKMA may
still receive a payload itself when the owner consents to HKMA by name.
The ledger cannot open a sealed box, so it checks presence and addressing
rules; opening is the recipient's business (consortium.ledger.builders).
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.records import replace
from consortium.ledger.rules.common import Ctx, Reject, need_party, need_role
from consortium.ledger.state import State
from consortium.types import Role


def _attestation(s: State, data_id: str) -> r.Attestation:
    att = s.get(t.DATA, data_id)
    if att is None:
        raise Reject(Code.MDOC, f"no attested data {data_id!r}")
    return att


def consent_key(data_id: str, grantee: str, purpose: str) -> str:
    return f"{data_id}/{grantee}/{purpose}"


def on_attest(s: State, ctx: Ctx, body: b.DataAttest) -> None:
    if s.get(t.DATA, body.data_id) is not None:
        raise Reject(Code.DUPE, f"data {body.data_id} is already attested")
    owner = need_party(s, body.owner, "owner")
    if owner.jurisdiction != "CN-SH":
        raise Reject(Code.BENV, f"SDB attests mainland data; {owner.id} is in {owner.jurisdiction}")
    s.put(t.DATA, body.data_id, r.Attestation(
        data_id=body.data_id, owner=body.owner, category=body.category, salted_hash=body.salted_hash,
        schema=body.schema, size=body.size, attested_by=ctx.actor, height=ctx.height))


def on_grant(s: State, ctx: Ctx, body: b.ConsentGrant) -> None:
    att = _attestation(s, body.data_id)
    if att.owner != ctx.actor:
        raise Reject(Code.AUTH, f"only the owner {att.owner} grants consent for {att.data_id}")
    need_role(s, body.grantee, "grantee", Role.BANK, Role.REGULATOR)
    if body.expires is not None and body.expires < ctx.date:
        raise Reject(Code.STATE, f"consent would expire on {body.expires}, before today")
    key = consent_key(body.data_id, body.grantee, body.purpose)
    old = s.get(t.CONSENT, key)
    if old is not None and old.status == "GRANTED":
        raise Reject(Code.STATE, f"consent for {body.grantee} / {body.purpose} is already granted")
    s.put(t.CONSENT, key, r.Consent(
        data_id=body.data_id, grantee=body.grantee, purpose=body.purpose, status="GRANTED",
        expires=body.expires, granted_height=ctx.height, revoked_height=None,
        uses=old.uses if old else 0, shares=old.shares if old else ()))


def on_revoke(s: State, ctx: Ctx, body: b.ConsentRevoke) -> None:
    att = _attestation(s, body.data_id)
    if att.owner != ctx.actor:
        raise Reject(Code.AUTH, f"only the owner {att.owner} revokes consent for {att.data_id}")
    key = consent_key(body.data_id, body.grantee, body.purpose)
    consent = s.get(t.CONSENT, key)
    if consent is None:
        raise Reject(Code.UNKNOWN, f"no consent for {body.grantee} / {body.purpose} on {body.data_id}")
    if consent.status != "GRANTED":
        raise Reject(Code.STATE, "consent is already revoked")
    for share_id in consent.shares:
        share = s.get(t.SHARE, share_id)
        if share is not None and share.status == "ACTIVE":
            s.put(t.SHARE, share_id, replace(share, status="ERASED", sealed=None, regulator_sealed=None))
    s.put(t.CONSENT, key, replace(consent, status="REVOKED", revoked_height=ctx.height))


def on_share(s: State, ctx: Ctx, body: b.DataShare) -> None:
    att = _attestation(s, body.data_id)
    if ctx.actor not in (att.owner, att.attested_by):
        raise Reject(Code.AUTH, f"only the owner {att.owner} or {att.attested_by} shares {att.data_id}")
    recipient = need_party(s, body.recipient, "recipient")
    if s.get(t.SHARE, body.share_id) is not None:
        raise Reject(Code.DUPE, f"share {body.share_id} exists")
    key = consent_key(body.data_id, body.recipient, body.purpose)
    consent = s.get(t.CONSENT, key)
    if consent is None or consent.status != "GRANTED" or (consent.expires or "9999") < ctx.date:
        state = "never granted" if consent is None else consent.status.lower()
        raise Reject(Code.NO_CONSENT, f"{att.owner} has no live consent for {body.recipient} / "
                                      f"{body.purpose} on {att.data_id} ({state})")
    _check_regulator_copy(recipient, body.regulator_sealed is not None)
    if len(consent.shares) >= limits.shares_per_consent_max:
        raise Reject(Code.LIMIT, f"consent {key} has {limits.shares_per_consent_max} shares")
    s.put(t.SHARE, body.share_id, r.Share(
        share_id=body.share_id, data_id=att.data_id, owner=att.owner, sender=ctx.actor,
        recipient=body.recipient, purpose=body.purpose, sealed=body.sealed,
        regulator_sealed=body.regulator_sealed, status="ACTIVE", height=ctx.height))
    s.put(t.CONSENT, key, replace(consent, uses=consent.uses + 1, shares=consent.shares + (body.share_id,)))


def _check_regulator_copy(recipient: r.PartyRecord, has_copy: bool) -> None:
    supervised = recipient.jurisdiction == "HK" and recipient.role == Role.BANK
    if supervised and not has_copy:
        raise Reject(Code.BENV, f"a share to the Hong Kong bank {recipient.id} carries a copy sealed to HKMA")
    if not supervised and has_copy:
        raise Reject(Code.BENV, f"HKMA is not entitled to a copy of a share to {recipient.id}")
