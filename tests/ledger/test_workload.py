"""The workload generator, the banking calendar and the PII detector.

Invariants, in words:
1. The workload is deterministic: same genesis, keys, seed and calls -> same bytes.
2. Its flows are plausible: with no faults asked for, every transaction is accepted.
3. Its faults are rejected with the reason codes they stand for.
4. Banking days come from the holidays library in the issuing bank's jurisdiction.
5. The PII detector finds PRC ID numbers (checksum-valid) and mainland mobiles,
   and leaves ordinary references, containers and checksums alone.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest

from consortium.ledger import Ledger, decode_tx
from consortium.ledger.banking import examination_period, is_banking_day, local_date
from consortium.ledger.invariants import check_invariants
from consortium.ledger.privacy import is_prc_id_number, text_finding
from consortium.ledger.workload import Workload
from consortium.types import Jurisdiction
from tests.ledger.helpers import GENESIS, KEYS

T = GENESIS.genesis_time_ms + 86_400_000


def run(seed: int, ratio: float, blocks: int = 8, size: int = 120) -> tuple[list[list[bytes]], Counter[str], Ledger]:
    ledger = Ledger(GENESIS)
    work = Workload(GENESIS, KEYS, random.Random(seed), invalid_ratio=ratio)
    out, codes = [], Counter[str]()
    for h in range(1, blocks + 1):
        txs = work.take(size, T + h * 60_000)
        out.append(txs)
        codes.update(r.code for r in ledger.apply(h, T + h * 60_000, txs))
        assert check_invariants(ledger) == []
    return out, codes, ledger


def test_same_seed_same_bytes_and_roots() -> None:
    """Same seed, same tx bytes and same root; another seed, other bytes."""
    a, _, la = run(11, 0.05)
    b, _, lb = run(11, 0.05)
    c, _, _ = run(12, 0.05)
    assert a == b and a != c and la.state_root() == lb.state_root()


def test_flows_are_accepted_and_cover_every_area() -> None:
    """Without faults every generated tx is accepted, and every area is exercised."""
    blocks, codes, ledger = run(5, 0.0, blocks=10)
    assert set(codes) == {"OK"}
    kinds = Counter(decode_tx(x).kind for txs in blocks for x in txs)
    for kind in ("ISSUE", "TRANSFER", "PLEDGE", "TRUST_RECEIPT", "LC_PRESENT", "LC_HONOUR", "FIN_REPAY",
                 "DATA_SHARE", "CONSENT_REVOKE", "SACC"):
        assert kinds[kind] > 0, kind


def test_faults_are_rejected_with_their_codes() -> None:
    """Deliberate faults are rejected with DUPE, BSIG, MDOC, ROLE; never INTERNAL."""
    _, codes, _ = run(7, 0.2)
    assert {"DUPE", "BSIG", "MDOC", "ROLE"} <= set(codes)
    assert "INTERNAL" not in codes


@pytest.mark.parametrize("day, hk, cn", [
    ("2026-04-03", False, True),   # Good Friday: a Hong Kong general holiday only
    ("2026-05-05", True, False),   # Labour Day golden week: mainland only
    ("2026-05-09", False, True),   # a Saturday the mainland works (adjusted working day)
    ("2026-10-01", False, False),  # National Day: both
    ("2026-03-04", True, True),
])
def test_banking_days_per_jurisdiction(day: str, hk: bool, cn: bool) -> None:
    """Banking days follow the HK and mainland calendars of the holidays library."""
    d = dt.date.fromisoformat(day)
    assert (is_banking_day(Jurisdiction.HK, d), is_banking_day(Jurisdiction.CN_SH, d)) == (hk, cn)


def test_a_presentation_on_a_closed_day_counts_from_the_next_banking_day() -> None:
    """UCP 600 art. 33 / 14(b): presented on Sunday 1 Mar 2026 in Hong Kong, deemed Monday 2 Mar,
    five banking days following: Monday 9 Mar."""
    deemed, deadline = examination_period(Jurisdiction.HK, dt.date(2026, 3, 1))
    assert (deemed.isoformat(), deadline.isoformat()) == ("2026-03-02", "2026-03-09")
    assert local_date(GENESIS.genesis_time_ms).isoformat() == "2026-03-01"  # 08:00 in Shanghai


@pytest.mark.parametrize("text, found", [
    ("holder 11010519491231002X", True),
    ("ID11010519491231002X", True),
    ("11010519491231002Y", False),        # wrong check character
    ("110105194913310028", False),        # no 13th month
    ("call +86 138 0013 8000", True),
    ("tel 138-0013-8000", True),
    ("call +8613800138000", True),
    ("13800138000", True),
    ("HPCU4812090", False),
    ("HPCS2603000001", False),
    ("6119835b7fe7d2fb144b73c086f34a2a5748abda6088ede4b3ffbd93e2d9c375", False),
])
def test_pii_detection(text: str, found: bool) -> None:
    """ID numbers and mobiles are found (checksum-valid only); references are not."""
    assert (text_finding(text) is not None) == found


def test_prc_id_checksum() -> None:
    """The MOD 11-2 check character decides an ID number."""
    assert is_prc_id_number("11010519491231002X") and not is_prc_id_number("110105194912310021")
