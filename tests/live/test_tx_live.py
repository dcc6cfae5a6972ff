"""`consortium tx` and `consortium query` against a running consortium, as a user runs them.

- The README's walk-through (`init`, `up --detach`, `status`, the LOAD events,
  the eBL issue, `query ebl`, `down`) works exactly as written.
- A transaction the nodes refuse at admission (it never reaches a block) is
  reported at once with the reason code, its sentence and the refusing nodes.
- A broker nobody listens on, an actor that is not in the consortium, a block
  beyond the chain: one clear line and a usage/not-found exit, at once.
- `query` prints readable lines by default and JSON only with --json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consortium import codec, crypto
from consortium.bus import topics
from consortium.bus.endpoint import endpoint, mqtt_client
from consortium.client.submit import Refusals, check_refusal_frame
from consortium.codec import Kind
from consortium.errors import RemoteError
from consortium.home import load_genesis, load_key
from consortium.ledger.codes import DESCRIPTIONS, Code
from consortium.ledger.tx import tx_hash
from consortium.ledger.workload import Workload
from consortium.node.runtime import validator_set
from tests.conftest import ROOT
from tests.live.conftest import Live, cli, consortium_home, wait_for
from tests.live.test_consortium import documents

pytestmark = pytest.mark.broker

README = ROOT / "README.md"
README_HOME = "/tmp/c"
README_EBL_ID = "ID"  # the README's placeholder for the id `tx ebl-issue` prints


def readme_commands() -> list[list[str]]:
    """The `consortium` command lines of the README's "What you can do" block that
    work on the README's home, in order, as argument lists (without the program)."""
    text = README.read_text(encoding="utf-8")
    block = text.split("## What you can do", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():  # shell line continuations
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == ".venv/bin/consortium" and README_HOME in argv:
            commands.append(argv[1:])
    return commands


def test_readme_walk_through_works_as_written(tmp_path: Path) -> None:
    """Every README command on its home runs as written, from the repository root,
    with only the home path and the printed eBL id filled in: the LOAD events are
    accepted, the eBL issue is accepted and prints the id, `query ebl` shows the
    shipper as possessor in readable lines, and `down` stops everything."""
    home = tmp_path / "c"
    commands = readme_commands()
    names = [" ".join(a for a in argv[:2] if not a.startswith("-")) for argv in commands]
    assert names[:3] == ["init", "up", "status"] and names[-1] == "down", names
    assert names.index("tx tnt-events") < names.index("tx ebl-issue") < names.index("query ebl"), names
    consortium = Live(home, "embedded")
    ebl_id = None
    try:
        for argv in commands:
            argv = [str(home) if a == README_HOME else a for a in argv]
            if argv[:2] == ["query", "ebl"]:
                assert ebl_id is not None, "ebl-issue printed no eBL id"
                argv = [ebl_id if a == README_EBL_ID else a for a in argv]
            out = subprocess.run([sys.executable, "-m", "consortium", *argv], capture_output=True, text=True,
                                 timeout=120, cwd=ROOT)  # the README's paths are relative to the repository
            shown = f"consortium {shlex.join(argv)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
            assert out.returncode == 0, shown
            if argv[:2] == ["tx", "ebl-issue"]:
                found = re.search(r"eBL ([0-9a-f]{64})", out.stdout)
                assert found, shown
                ebl_id = found.group(1)
            if argv[:2] == ["query", "ebl"]:
                assert not out.stdout.lstrip().startswith("{"), "readable lines, not JSON, without --json"
                assert re.search(r"possessor\s*:?\s+sh-exporter", out.stdout), shown
    finally:
        consortium.cleanup()


def test_a_tx_the_nodes_refuse_is_reported_at_once_with_reason_and_nodes(live: Live, tmp_path: Path) -> None:
    """A bank signing an eBL issue breaks the ledger's role rule: every node refuses it
    at admission, so it never reaches a block. `tx` returns within seconds (not at
    --timeout) with exit 1, the reason code ROLE and its sentence, and names the
    refusing nodes: members of the consortium, more than f = 2 of them (a refusal only
    f Byzantine nodes could have made up does not count). Plain output: one line."""
    live.up()
    _, document = documents(tmp_path)
    args = ("tx", "ebl-issue", "--as", "bank-hk", "--document", str(document), "--to", "sh-exporter",
            "--consignee", "hk-importer", "--home", str(live.home), "--timeout", "60")
    t0 = time.monotonic()
    out = cli(*args, "--json", check=False)
    took = time.monotonic() - t0
    assert out.returncode == 1, f"{out.returncode}\n{out.stdout}\n{out.stderr}"
    data = json.loads(out.stdout)
    assert data["code"] == "ROLE" and data["detail"] == DESCRIPTIONS[Code.ROLE], data
    assert data["decided"] is False and data["accepted"] is False, data
    assert set(data["refused_by"]) <= set(live.members) and len(data["refused_by"]) >= 3, data
    assert took < 30, f"took {took:.1f} s (--timeout is 60 s)"
    plain = cli(*args, check=False)
    text = (plain.stdout + plain.stderr).strip()
    assert plain.returncode == 1 and len(text.splitlines()) == 1, text
    assert "ROLE" in text and DESCRIPTIONS[Code.ROLE] in text, text
    assert any(m in text for m in live.members), text


# ---------------------------------------------------------------- one running consortium, several quick checks


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with consortium_home(tmp_path_factory.mktemp("tx-errors"), "embedded") as consortium:
        consortium.up()
        consortium.wait_height(1)
        yield consortium


def _one_line(out: object) -> str:
    text = (out.stdout + out.stderr).strip()  # type: ignore[attr-defined]
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    return text


def test_tx_to_an_unreachable_broker_fails_at_once_naming_the_address(running: Live) -> None:
    """`tx --broker mqtt://127.0.0.1:1` (nothing listens there) exits 2 within a couple of
    seconds with one line naming the address and "connection refused", instead of
    waiting for --timeout and calling the tx "not decided"."""
    events, _ = documents(running.home.parent)
    t0 = time.monotonic()
    out = cli("tx", "tnt-events", "--as", "carrier-sh", "--file", str(events), "--home", str(running.home),
              "--broker", "mqtt://127.0.0.1:1", "--timeout", "60", check=False)
    took = time.monotonic() - t0
    line = _one_line(out)
    assert out.returncode == 2, line
    assert "cannot connect to broker 127.0.0.1:1: connection refused" in line, line
    assert took < 20, f"took {took:.1f} s (--timeout is 60 s)"


def test_tx_as_someone_outside_the_consortium_says_so(running: Live) -> None:
    """`tx --as mallory` exits 2 with "mallory is not a member or party of this
    consortium", not a message about a missing key file."""
    events, _ = documents(running.home.parent)
    out = cli("tx", "tnt-events", "--as", "mallory", "--file", str(events), "--home", str(running.home), check=False)
    line = _one_line(out)
    assert out.returncode == 2, line
    assert "mallory is not a member or party of this consortium" in line, line


def test_query_block_beyond_the_chain_says_it_does_not_exist(running: Live) -> None:
    """`query block 999999` exits 1 saying that block does not exist and how far the
    node's chain goes, instead of echoing the requested height as the node's height."""
    out = cli("query", "block", "999999", "--home", str(running.home), check=False)
    line = _one_line(out)
    assert out.returncode == 1, line
    assert "block 999999 does not exist" in line, line
    last = re.search(r"ends at height (\d+)", line)
    assert last and 0 < int(last.group(1)) < 999999, line


def test_query_prints_readable_lines_and_json_only_on_request(running: Live) -> None:
    """`query block 1` and `query summary` print readable lines (not JSON) by default;
    with --json the same answer is one JSON document."""
    home = ("--home", str(running.home))
    for what in (("block", "1"), ("summary",)):
        plain = cli("query", *what, *home)
        with pytest.raises(ValueError):
            json.loads(plain.stdout)
        assert "height" in plain.stdout, plain.stdout
        as_json = json.loads(cli("query", *what, *home, "--json").stdout)
        assert as_json["answer"]["height"] >= 1, as_json
    block = cli("query", "block", "1", *home).stdout
    assert re.search(r"proposer\s*:?\s+\S+", block), block



def test_a_batch_frame_admits_its_good_txs_and_refuses_the_forged_one(running: Live) -> None:
    """One TX frame carries three txs of trading parties: two signed correctly and,
    between them, a copy of a third whose signature was altered. The frame's own
    envelope signature is made with the wrong key too (nodes do not check it: each tx
    carries its own). Every node admits each tx on its own: the two good ones reach a
    block (in every store), the forged one reaches none, and validators holding more
    than f's power refuse it with BSIG in TX_REFUSED frames to the frame's sender."""
    home = running.home
    genesis = load_genesis(home)
    parties = ("carrier-sh", "bank-hk", "sh-exporter", "hk-importer")
    work = Workload(genesis, {p: load_key(home, p, genesis) for p in parties}, random.Random(12), prefix="B")
    first, second, spare = work.take(3, int(time.time() * 1000))
    forged = spare[:-1] + bytes([spare[-1] ^ 1])  # the tx's signature is its last byte string
    wrong = crypto.Signer(load_key(home, "bank-hk", genesis))
    frame = codec.seal_envelope(genesis.chain_id, "sh-exporter", Kind.TX, {"txs": [first, forged, second]}, wrong)
    ep = endpoint(home, None)
    refusals = Refusals(validator_set(genesis), tx_hash(forged))

    async def publish_and_listen() -> tuple[str, list[str]] | None:
        async with mqtt_client(ep, "batch-test") as c:
            await c.subscribe(topics.refusals_for(ep.chain_id, "sh-exporter"), qos=1)
            await c.publish(topics.broadcast(ep.chain_id, "sh-exporter", Kind.TX), frame.encode(), qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    async for message in c.messages:
                        try:  # amqtt also hands over retained records of other topics
                            env = check_refusal_frame(ep, "sh-exporter", str(message.topic), bytes(message.payload))
                        except RemoteError:
                            continue
                        refusals.add(env)
                        if refusals.conclusive() is not None:
                            break
            return refusals.conclusive()

    refused = asyncio.run(publish_and_listen())
    assert refused is not None and refused[0] == "BSIG", refusals.codes

    def in_every_store() -> bool:
        stores = running.stores()
        try:
            return all(s.tx_result(tx_hash(tx)) is not None for s in stores.values() for tx in (first, second))
        finally:
            for s in stores.values():
                s.close()

    wait_for("both good txs in every store", in_every_store, 30)
    stores = running.stores()
    try:
        assert all(s.tx_result(tx_hash(forged)) is None for s in stores.values())
    finally:
        for s in stores.values():
            s.close()
