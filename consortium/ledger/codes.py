"""Reason codes of the trade ledger: DCSA PINT response codes where one fits, our own otherwise.

A code is machine-readable and stable (tests, counters, scenario expectations
match on it); the human sentence travels next to it in `TxResult.detail`.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    OK = "OK"
    # --- DCSA EBL PINT 3.0 response codes (EnvelopeTransferFinishedResponse.responseCode)
    DUPE = "DUPE"  # already applied: nonce used, document or id already on the ledger
    BSIG = "BSIG"  # bad signature, or a signature by an unknown key
    BENV = "BENV"  # malformed tx or an act the eBL cannot take (invalid action, after SACC, ...)
    INCD = "INCD"  # declared document checksum does not match the document
    MDOC = "MDOC"  # a document the tx relies on is not on the ledger (eBL, LOAD event, data)
    DISE = "DISE"  # double-spending risk: not the possessor, reference reuse, collateral reuse
    # --- our own codes
    ROLE = "ROLE"  # the actor's role or jurisdiction may never submit this kind
    AUTH = "AUTH"  # right role, but not the party entitled to act on this record
    TITLE = "TITLE"  # possessor is not the holder entitled to endorse or surrender
    PLEDGED = "PLEDGED"  # the eBL is pledged and the act needs the pledgee
    STATE = "STATE"  # the record is not in a state that allows this act
    UNKNOWN = "UNKNOWN"  # the referenced record (LC, financing, consent, ...) does not exist
    LOAD_MISMATCH = "LOAD_MISMATCH"  # LOAD events do not agree with the on-board date or port
    FUTURE = "FUTURE"  # an actual (ACT) cargo event dated after the block time
    EXPIRED = "EXPIRED"  # confirmation of an expired credit (a late presentation is a discrepancy instead)
    PRECLUDED = "PRECLUDED"  # refusal after the examination period (UCP 600 art. 14(b), 16(f))
    NOTICE = "NOTICE"  # a second refusal notice: the notice is single (UCP 600 art. 16(d))
    AMOUNT = "AMOUNT"  # repayment larger than the outstanding amount
    NO_CONSENT = "NO_CONSENT"  # data share without a live consent for that bank and purpose
    PII = "PII"  # plaintext personal data of a mainland party
    LIMIT = "LIMIT"  # a ledger bound is reached (parties, chain length, amendments, ...)
    INTERNAL = "INTERNAL"  # a bug in the ledger; the tx is rolled back, the node keeps running
    # --- settlement in tokenised deposits (rules/settlement.py)
    FUNDS = "FUNDS"  # the payer's deposit-token balance is below the amount (no overdraft)
    CURRENCY = "CURRENCY"  # no deposit token in this currency on the ledger (HKD, CNH, USD)
    OBLIGATION = "OBLIGATION"  # the payment does not match the obligation it claims to settle
    # --- collateral under control (rules/finance.py)
    RESERVED = "RESERVED"  # the eBL is reserved by a requested financing: it moves only to or by the lender


DESCRIPTIONS: dict[Code, str] = {
    Code.OK: "accepted and applied",
    Code.DUPE: "already applied: the actor's nonce was used before, or the document/id already exists",
    Code.BSIG: "the signature does not verify, or the signer has no registered key",
    Code.BENV: "malformed transaction, or an act the eBL cannot take in its type or state",
    Code.INCD: "the declared checksum differs from SHA-256 of the document's RFC 8785 form",
    Code.MDOC: "a document the transaction relies on (eBL, LOAD event, data attestation) is missing",
    Code.DISE: "double-spending risk: not the possessor, reference reused, collateral already pledged",
    Code.ROLE: "the actor's role or jurisdiction may not submit this kind of transaction",
    Code.AUTH: "the actor is not the party entitled to act on this record",
    Code.TITLE: "the possessor is not the holder entitled to endorse or surrender the eBL",
    Code.PLEDGED: "the eBL is pledged; only the pledgee may move it (or the pledgor under a trust receipt)",
    Code.STATE: "the record is not in a state that allows this act",
    Code.UNKNOWN: "the referenced record does not exist",
    Code.LOAD_MISMATCH: "LOAD events do not match the shipped-on-board date or port of loading",
    Code.FUTURE: "an actual cargo event is dated after the block time",
    Code.EXPIRED: "the credit has expired (UCP 600 art. 6(d), 29(a)): it can no longer be confirmed",
    Code.PRECLUDED: "refusal after the examination period: the bank is precluded (UCP 600 art. 16(f))",
    Code.NOTICE: "a refusal is a single notice stating the discrepancies it refuses on (UCP 600 art. 16(c), (d))",
    Code.AMOUNT: "the amount exceeds what is outstanding",
    Code.NO_CONSENT: "the data owner has not granted (or has revoked) consent for this bank and purpose",
    Code.PII: "plaintext personal data of a mainland party may not enter the ledger",
    Code.LIMIT: "a ledger bound is reached",
    Code.INTERNAL: "internal error in the ledger (a bug): the transaction was rolled back",
    Code.FUNDS: "the payer's deposit-token balance is too low: an account may not be overdrawn",
    Code.CURRENCY: "no deposit token in this currency on the ledger (HKD, CNH, USD)",
    Code.OBLIGATION: "the payment does not match the obligation it claims (state, parties or currency)",
    Code.RESERVED: "the eBL is reserved by a financing request: until the lender answers it moves only to or by it",
}

#: Codes a block may not contain at all (check_block): the tx can never be valid.
STATELESS = frozenset({Code.BENV, Code.BSIG, Code.INCD, Code.PII})

assert set(DESCRIPTIONS) == set(Code)
