"""Ledger throughput: transactions applied per second on one core, signatures included.

    python -m consortium.bench.ledger [--txs 20000] [--block 512] [--seed 1]
                                                 [--invalid 0.02] [--json] [--profile]

A deterministic workload (consortium.ledger.workload: eBL, pledge, LC, receivables and
consent flows, a few faulty txs) is generated and signed first, outside the timing.
Then a fresh ledger processes it block by block as a validator would: check_block
(decode + Ed25519 verify of every tx, memoised) then apply_block then state_root.
Reported: txs/s over that loop (wall clock, and per CPU-second of this process, which
other load on the machine disturbs less), the cost of each part, and check_invariants.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections import Counter
from typing import Any

from consortium import crypto, limits
from consortium.consensus.app import BlockContext
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, Genesis, keyed_genesis
from consortium.ledger import Ledger, decode_tx
from consortium.ledger.invariants import check_invariants
from consortium.ledger.workload import Workload
from consortium.types import Jurisdiction, Member, Party, Role

MEMBERS = [("hkma", Role.REGULATOR, Jurisdiction.HK), ("sdb", Role.DATA_BUREAU, Jurisdiction.CN_SH),
           ("nticbc", Role.TECH_CENTER, Jurisdiction.CN_SH), ("bank-hk", Role.BANK, Jurisdiction.HK),
           ("bank-sh", Role.BANK, Jurisdiction.CN_SH), ("carrier-hk", Role.CARRIER, Jurisdiction.HK),
           ("carrier-sh", Role.CARRIER, Jurisdiction.CN_SH)]
PARTIES = [("sh-exporter", Role.SHIPPER, Jurisdiction.CN_SH), ("sh-supplier", Role.SHIPPER, Jurisdiction.CN_SH),
           ("hk-importer", Role.CONSIGNEE, Jurisdiction.HK), ("hk-distributor", Role.CONSIGNEE, Jurisdiction.HK)]


def consortium_genesis() -> tuple[Genesis, dict[str, crypto.KeyPair]]:
    """The default consortium's shape (nodes/), with keys derived from the ids."""
    return keyed_genesis("bench-chain", DEFAULT_GENESIS_TIME_MS,
                         (Member(i, i, r, j, True, 10) for i, r, j in MEMBERS),
                         (Party(i, i, r, j) for i, r, j in PARTIES),
                         lambda i: crypto.keypair_from_entropy(b"bench/" + i.encode()))


def generate(genesis: Genesis, keys: dict[str, crypto.KeyPair], txs: int, block: int, seed: int,
             invalid: float, concurrency: int = 16) -> list[tuple[BlockContext, list[bytes]]]:
    work = Workload(genesis, keys, random.Random(seed), invalid_ratio=invalid, concurrency=concurrency)
    blocks = []
    now = genesis.genesis_time_ms + 86_400_000
    for height in range(1, (txs + block - 1) // block + 1):
        now += 1_000
        blocks.append((BlockContext(height, now, "hkma"), work.take(min(block, txs - (height - 1) * block), now)))
    return blocks


def measure(genesis: Genesis, blocks: list[tuple[BlockContext, list[bytes]]],
            invariants: bool = True) -> dict[str, Any]:
    ledger = Ledger(genesis)
    t_check = t_apply = t_root = 0.0
    codes: Counter[str] = Counter()
    cpu0 = time.process_time()
    for ctx, txs in blocks:
        t0 = time.perf_counter()
        assert ledger.check_block(ctx, [x for x in txs if ledger.check_tx(x) not in ("BENV", "BSIG")]) is None
        t1 = time.perf_counter()
        codes.update(r.code for r in ledger.apply_block(ctx, txs))
        t2 = time.perf_counter()
        ledger.state_root()
        t3 = time.perf_counter()
        t_check, t_apply, t_root = t_check + t1 - t0, t_apply + t2 - t1, t_root + t3 - t2
    cpu = time.process_time() - cpu0  # CPU time: what one core spent, whatever else runs
    n = sum(len(txs) for _, txs in blocks)
    total = t_check + t_apply + t_root
    t0 = time.perf_counter()
    problems = check_invariants(ledger) if invariants else []
    t_inv_full = time.perf_counter() - t0
    return {"txs": n, "blocks": len(blocks), "seconds": round(total, 3), "txs_per_s": round(n / total),
            "cpu_seconds": round(cpu, 3), "txs_per_cpu_s": round(n / cpu),
            "check_block_us_per_tx": round(t_check / n * 1e6, 1), "apply_us_per_tx": round(t_apply / n * 1e6, 1),
            "state_root_ms_per_block": round(t_root / len(blocks) * 1e3, 2),
            "check_invariants_cold_ms": round(t_inv_full * 1e3, 1), "invariant_violations": len(problems),
            "codes": dict(sorted(codes.items())), "state_records": sum(ledger.state.count(t) for t in _tables()),
            "snapshot_bytes": len(ledger.snapshot())}


def node_path_per_cpu_s(txs: int = limits.bench_ledger_tx_count) -> int:
    """Transactions per CPU-second of one validator's ledger path on one core: admission
    (check_tx: decode, Ed25519, nonce, role), the proposal check, apply_block and the state
    root, for the live load's mix (bench/load.py: no faulty txs, 64 concurrent trade flows).
    No consensus, bus, store or other process: a live consortium of n validators on c cores
    commits at most c x this / n tx/s (`consortium bench` prints it as the ledger ceiling).
    Measured on a fresh ledger, whose small state makes it, if anything, high."""
    genesis, keys = consortium_genesis()
    blocks = generate(genesis, keys, txs, limits.bench_ledger_block_tx_count, 1, 0.0, concurrency=64)
    return int(measure(genesis, blocks, invariants=False)["txs_per_cpu_s"])


def _tables() -> Any:
    from consortium.ledger.state import TABLES
    return TABLES


def invariants_per_block(genesis: Genesis, blocks: list[tuple[BlockContext, list[bytes]]]) -> float:
    """Average ms of check_invariants after each block, as the simulator calls it."""
    ledger = Ledger(genesis)
    spent = 0.0
    for ctx, txs in blocks:
        ledger.apply_block(ctx, txs)
        t0 = time.perf_counter()
        check_invariants(ledger)
        spent += time.perf_counter() - t0
    return round(spent / len(blocks) * 1e3, 2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--invalid", type=float, default=0.02, help="share of deliberately faulty txs")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the measured loop")
    args = ap.parse_args(argv)
    genesis, keys = consortium_genesis()
    blocks = generate(genesis, keys, args.txs, args.block, args.seed, args.invalid)
    mix = Counter(decode_tx(x).kind for _, txs in blocks for x in txs if _decodes(x))
    if args.profile:
        import cProfile
        import pstats
        with cProfile.Profile() as prof:
            measure(genesis, blocks)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    result = measure(genesis, blocks)
    result["check_invariants_ms_per_block"] = invariants_per_block(genesis, blocks)
    result["mix"] = dict(mix.most_common())
    result["machine"] = f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}"
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['txs']} txs in {result['blocks']} blocks: {result['txs_per_s']} txs/s wall, "
          f"{result['txs_per_cpu_s']} txs per CPU-second ({result['seconds']} s; check_block {result['check_block_us_per_tx']} us/tx, "
          f"apply {result['apply_us_per_tx']} us/tx, state_root {result['state_root_ms_per_block']} ms/block)")
    print(f"check_invariants: {result['check_invariants_ms_per_block']} ms/block "
          f"({result['check_invariants_cold_ms']} ms cold, {result['invariant_violations']} violations)")
    print(f"codes: {result['codes']}")
    print(f"mix: {result['mix']}")


def _decodes(data: bytes) -> bool:
    try:
        decode_tx(data)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
