"""The rules: which roles may submit each kind, and the handler that applies it.

A handler reads and writes the state inside one state transaction and raises
`Reject` to refuse; it never scans a whole table (cost follows the tx) and
never reads anything but the state, the context and the body (determinism).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consortium.ledger.bodies import BY_KIND
from consortium.ledger.rules import cargo, credit, data, ebl, finance, parties, settlement
from consortium.ledger.rules.common import Ctx, Reject
from consortium.ledger.state import State
from consortium.types import Role

Handler = Callable[[State, Ctx, Any], None]

_CARRIER = frozenset({Role.CARRIER})
_BANK = frozenset({Role.BANK})
_TRADER = frozenset({Role.SHIPPER, Role.CONSIGNEE})

#: Roles allowed to submit a kind at all (None: any registered party or member;
#: who may act on a given record is then decided by the handler).
ROLES: dict[str, frozenset[Role] | None] = {
    "REGISTER_PARTY": frozenset({Role.REGULATOR, Role.DATA_BUREAU}),
    "ISSUE": _CARRIER, "SACC": _CARRIER, "SREJ": _CARRIER, "VOID": _CARRIER, "CARGO_EVENT": _CARRIER,
    "TRANSFER": None, "ENDORSE": None, "ENDORSE_TO_ORDER": None, "BLANK_ENDORSE": None, "SIGN": None,
    "SURRENDER_FOR_DELIVERY": None, "SURRENDER_FOR_AMENDMENT": None, "PLEDGE": None,
    "RELEASE": _BANK, "TRUST_RECEIPT": _BANK,
    "LC_ISSUE": _BANK, "LC_ADVISE": _BANK, "LC_AMEND": _BANK, "LC_HONOUR": _BANK, "LC_REFUSE": _BANK,
    "LC_AMEND_ACCEPT": None, "LC_AMEND_REJECT": None, "LC_PRESENT": None, "LC_WAIVE": None,
    "FIN_REQUEST": _TRADER, "FIN_APPROVE": _BANK, "FIN_DECLINE": _BANK, "FIN_REPAY": _BANK,
    "DATA_ATTEST": frozenset({Role.DATA_BUREAU}),
    "CONSENT_GRANT": None, "CONSENT_REVOKE": None, "DATA_SHARE": None,
    "TOKEN_ISSUE": _BANK, "TOKEN_REDEEM": None, "PAY": None, "INTERBANK_SETTLE": _BANK,
    "DVP_OFFER": None, "DVP_CANCEL": None, "DVP": None,
    "LC_CONFIRM": _BANK, "LC_FORWARD": _BANK, "LC_REIMBURSE": _BANK,
    "VSA_DECLARE": _CARRIER,
}

HANDLERS: dict[str, Handler] = {
    "REGISTER_PARTY": parties.on_register,
    "ISSUE": ebl.on_issue, "TRANSFER": ebl.on_transfer, "ENDORSE": ebl.on_endorse,
    "ENDORSE_TO_ORDER": ebl.on_endorse_to_order, "BLANK_ENDORSE": ebl.on_blank_endorse, "SIGN": ebl.on_sign,
    "SURRENDER_FOR_DELIVERY": ebl.on_surrender_for_delivery,
    "SURRENDER_FOR_AMENDMENT": ebl.on_surrender_for_amendment,
    "SACC": ebl.on_sacc, "SREJ": ebl.on_srej, "VOID": ebl.on_void, "PLEDGE": ebl.on_pledge,
    "RELEASE": ebl.on_release, "TRUST_RECEIPT": ebl.on_trust_receipt,
    "CARGO_EVENT": cargo.on_events,
    "LC_ISSUE": credit.on_issue, "LC_ADVISE": credit.on_advise, "LC_AMEND": credit.on_amend,
    "LC_AMEND_ACCEPT": credit.on_amend_accept, "LC_AMEND_REJECT": credit.on_amend_reject,
    "LC_PRESENT": credit.on_present, "LC_HONOUR": credit.on_honour, "LC_REFUSE": credit.on_refuse,
    "LC_WAIVE": credit.on_waive,
    "FIN_REQUEST": finance.on_request, "FIN_APPROVE": finance.on_approve, "FIN_DECLINE": finance.on_decline,
    "FIN_REPAY": finance.on_repay,
    "DATA_ATTEST": data.on_attest, "CONSENT_GRANT": data.on_grant, "CONSENT_REVOKE": data.on_revoke,
    "DATA_SHARE": data.on_share,
    "TOKEN_ISSUE": settlement.on_issue, "TOKEN_REDEEM": settlement.on_redeem, "PAY": settlement.on_pay,
    "INTERBANK_SETTLE": settlement.on_interbank_settle, "DVP_OFFER": settlement.on_dvp_offer,
    "DVP_CANCEL": settlement.on_dvp_cancel, "DVP": settlement.on_dvp,
    "LC_CONFIRM": credit.on_confirm, "LC_FORWARD": credit.on_forward, "LC_REIMBURSE": credit.on_reimburse,
    "VSA_DECLARE": cargo.on_vsa_declare,
}

assert set(HANDLERS) == set(BY_KIND) == set(ROLES), "every kind has a role rule and a handler"

__all__ = ["HANDLERS", "ROLES", "Ctx", "Reject"]
