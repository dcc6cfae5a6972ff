"""Every bound in one place, units last in the name (TIGER_STYLE).

Relations between limits are asserted once, at import, at the bottom.
"""

from __future__ import annotations

# Identities
member_id_bytes_max = 32
chain_id_bytes_max = 64
members_max = 64  # validators + non-validator members
parties_max = 4096
voting_power_max = 1_000_000

# Frames on the bus
frame_bytes_max = 1_048_576  # one signed envelope, encoded
kind_bytes_max = 32
signature_bytes = 64
public_key_bytes = 32
digest_bytes = 32
codec_depth_max = 32  # nesting of lists/maps in a decoded value
codec_items_max = 65_536  # elements in one list or map
codec_str_bytes_max = 262_144
codec_int_bits_max = 64  # ints must fit a signed/unsigned 64-bit integer

# Transactions and blocks
tx_bytes_max = 65_536
block_txs_max = 512
block_bytes_max = 900_000
mempool_txs_max = 20_000

# Consensus timing (Tendermint: timeouts grow linearly with the round)
propose_timeout_ms = 1_000
propose_timeout_ms_delta = 500
prevote_timeout_ms = 500
prevote_timeout_ms_delta = 250
precommit_timeout_ms = 500
precommit_timeout_ms_delta = 250
round_timeout_ms_max = 30_000
block_interval_ms = 1_000  # wait after a commit before the next height starts
rounds_max = 10_000  # a height that needs more rounds is a liveness bug
evidence_per_block_max = 64
sync_blocks_per_response_max = 64

assert block_bytes_max + 64 * 1024 < frame_bytes_max, "a full proposal fits one frame"
assert tx_bytes_max < block_bytes_max
assert block_txs_max <= codec_items_max
assert codec_str_bytes_max < frame_bytes_max
assert propose_timeout_ms <= round_timeout_ms_max
assert sync_blocks_per_response_max >= 1

# Consensus message windows
rounds_ahead_max = 1_000  # votes for rounds further ahead than this are ignored
future_messages_max = 4_096  # buffered messages for the next height
block_time_skew_ms_max = 10_000  # a proposal's block time may lead our clock by this much
sync_retry_ms = 1_000  # re-ask for missing blocks after this long without an answer

assert future_messages_max >= 4 * members_max

# Clients of the bus (status readers, tx submitters, load processes)
client_connect_timeout_ms = 5_000  # MQTT connect of readers and one-shot publishers
status_stale_after_ms = 3_000  # a status record older than this: the node stopped or hangs
status_read_wait_ms = 2_000  # how long `status` waits for every expected node's record
status_reconnect_ms = 500  # a status reader's pause before reconnecting to a failed broker

# Brokers and child processes
broker_packet_bytes_max = frame_bytes_max + 16 * 1024  # mosquitto's max_packet_size: a frame + MQTT header
broker_ready_timeout_ms = 15_000  # a local broker accepts connections within this after start
broker_stop_timeout_ms = 5_000  # after SIGTERM, a broker gets this long before SIGKILL
node_stop_timeout_ms = 10_000  # after SIGTERM, node processes get this long before SIGKILL
process_kill_timeout_ms = 5_000  # after SIGKILL, a process is gone within this
process_poll_ms = 20  # how often a stopping process is polled
log_tail_lines_max = 8  # lines of a child's log quoted in an error message
node_start_gap_ms = 150  # between two node starts (amqtt breaks sessions that connect during a subscribe)

# Consensus: bounds of the replica's own work
upon_rule_firings_max = 10_000  # upon-rule firings for one input; more means the rules loop (a bug)
proposer_schedule_slots_max = 100_000  # slots of a precomputed proposer schedule (memory), coarser beyond

# Ledger: transaction validity (changing one changes which txs a block may hold)
used_nonces_max = 64  # per sender: nonces above the floor remembered; older ones raise the floor
amount_minor_units_max = 10**15  # a quadrillion cents is more than any trade
document_text_chars_max = 60_000  # a T&T events payload's JSON text (an ISSUE document: only tx_bytes_max)
sealed_bytes_min = 48  # a sealed box: 32 (ephemeral key) + 16 (MAC) + the message
sealed_bytes_max = 16_384  # a sealed (encrypted) body for its recipients
dcsa_reference_chars_max = 20  # DCSA TransportDocument.transportDocumentReference maxLength
events_per_tx_max = 64  # T&T events in one tx
event_clock_slack_ms = 3_600_000  # an ACTual event may lead block time this much (carriers' clocks differ)
loads_per_container_max = 32  # LOAD events kept per container (older ones belong to past voyages)
load_lookback_days = 30  # a LOAD more than this before the on-board date belongs to another voyage
ebl_chain_entries_max = 512  # endorsement chain of one eBL
lc_amendments_max = 16  # amendments of one letter of credit
lc_presentations_max = 16  # document presentations under one letter of credit
shares_per_consent_max = 64  # data shares under one consent
# Ledger: bounds of the implementation (no effect on validity)
bank_closure_days_max = 60  # no holiday season closes banks this long; guards the banking-day loops
privacy_walk_depth_max = 40  # recursion guard of the privacy scan (the codec already bounds nesting)
state_touched_keys_max = 1_000_000  # written keys tracked for incremental invariant checks; beyond: full pass
invariant_cache_entries_max = 200_000  # cached per-record invariant results; beyond: cleared
snapshot_container_len_max = 2**31  # msgpack per-container bound when restoring our own snapshot file

assert privacy_walk_depth_max > codec_depth_max, "the codec refuses deeper values first"
assert document_text_chars_max < tx_bytes_max
assert sealed_bytes_max < tx_bytes_max

# Bus (transport): per adapter
topic_bytes_max = 256  # longest topic parsed: root, two ids, "to", a kind and separators
bus_frames_queued_max = 10_000  # checked frames waiting for the node; beyond: the oldest is dropped
bus_outbox_frames_max = 1_000  # frames published while disconnected, sent on reconnect; beyond: oldest dropped
bus_recent_frames_max = 8_192  # recent good frames remembered (by digest) to drop byte-identical replays
bus_client_messages_queued_max = 10_000  # paho's outgoing queue (a stalled broker must not eat our memory)
bus_reconnect_delay_ms_min = 50  # first reconnect attempt after a lost connection ...
bus_reconnect_delay_ms_max = 2_000  # ... doubling (with jitter) up to this
bus_keepalive_ms = 10_000  # MQTT keepalive (whole seconds): a hung broker is noticed after 1.5x this
bus_publish_timeout_ms = 5_000  # one publish waiting for the socket; longer counts as failed

assert bus_reconnect_delay_ms_min <= bus_reconnect_delay_ms_max
assert bus_keepalive_ms % 1000 == 0, "MQTT keepalive is in whole seconds"
assert bus_publish_timeout_ms < node_stop_timeout_ms, "a stuck publish cannot outlast a stop"

# Brokers (more)
broker_passwd_timeout_ms = 60_000  # mosquitto_passwd hashing the password file
broker_probe_timeout_ms = 200  # one TCP connect probe of a broker port (local: answers at once)
broker_probe_delay_ms_min = 20  # first pause between probes of a starting broker ...
broker_probe_delay_ms_max = 200  # ... doubling up to this
embedded_broker_shutdown_timeout_ms = 5_000  # amqtt's own shutdown; beyond it the process exits anyway
parent_poll_ms = 1_000  # how often a child (embedded broker, attached node) checks its parent is alive

assert broker_probe_delay_ms_max < broker_ready_timeout_ms

# Node runtime
status_interval_ms = 500  # a node refreshes its retained status record this often ...
status_gap_ms = 100  # ... and at most this often (a commit triggers one sooner)
status_flush_ms = 50  # after the last ("stopped") record: it reaches the socket before we close
peer_seen_ms = 3_000  # a peer counts as seen if a frame from it arrived within this
rate_window_ms = 5_000  # tx/s in the status record is averaged over this
frames_per_turn_max = 64  # frames handled in a row before the loop yields to the reader and other tasks
txs_per_turn_max = 32  # txs handed to the replica in a row (then timers and votes go first again)
urgent_frames_max = 10_000  # consensus/sync/status frames waiting for the replica; beyond: oldest dropped
tx_backlog_max = 20_000  # txs waiting for the replica; beyond: new ones refused (counted)
mempool_blocks_max = 4  # txs reach the replica only while its mempool holds fewer blocks' worth
node_idle_wait_ms = 100  # longest idle wait of the loop (bounds the reaction time to stop)
sync_serve_interval_ms = 100  # a peer's sync requests are answered at most this often (a flood costs reads)
node_connect_wait_ms = 5_000  # wait for the broker before the first Start (then the outbox buffers)
delayed_frames_max = 100_000  # frames held back by a delay filter at once; beyond: dropped (counted)
block_interval_ms_override_max = 60_000  # a node's local block-interval override (a pause, not a stall)
netfilter_poll_ms = 250  # how often a node looks at its network filter file
netfilter_delay_ms_max = 60_000  # longest extra delay a filter may ask for
node_ready_poll_ms = 200  # how often starting nodes' status records are looked at
nodes_ready_wait_ms = 90_000  # `up --detach` and live scenarios: every node's first status record
node_reap_timeout_ms = 10_000  # a SIGKILLed / stopped child node is reaped within this

assert status_gap_ms < status_interval_ms
assert status_stale_after_ms > 2 * status_interval_ms, "one late refresh is not yet stale"
assert status_read_wait_ms > status_interval_ms, "a reader waits for at least one refresh"
assert peer_seen_ms > status_interval_ms, "a peer that only publishes status still counts as seen"
assert block_interval_ms <= block_interval_ms_override_max
assert netfilter_delay_ms_max <= block_interval_ms_override_max

# Store
snapshot_every_heights = 64  # a full snapshot this often (each node at its own phase); boot replays <= 2x
blocks_per_read_max = 1_024  # most blocks one store `blocks()` call returns, whatever the caller asks for
store_busy_timeout_ms = 5_000  # SQLite busy timeout: a second process waits this long for the file lock

assert blocks_per_read_max >= sync_blocks_per_response_max

# Clients: transaction submitters
tx_wait_ms = 30_000  # `tx` waits this long for the decision (--timeout)
tx_resend_ms = 5_000  # re-publish an undecided tx this often (a node that was down may have missed it)
tx_retry_ms = 1_000  # retry a publish the broker did not take after this long
tx_poll_ms = 100  # how often the stores are polled for the decision
status_poll_ms = 50  # how often a status reader checks whether every expected record arrived

assert tx_resend_ms < tx_wait_ms
assert tx_retry_ms < tx_resend_ms

# Scenario back-ends
scenario_sim_step_timeout_ms = 120_000  # virtual: a tx step waits for its block, a height step for its height
scenario_sim_settle_ms = 15_000  # virtual, after the last step: every node commits the last blocks (a node that missed the last commit under 20 % loss needs several sync exchanges: seeds 1, 3, 4 of loss-20-percent took longer than 3 s)
scenario_live_step_timeout_ms = 60_000  # real time: same as the simulator's, on real processes
scenario_live_settle_ms = 15_000  # real time, after the last step
scenario_live_liveness_wait_ms = 90_000  # real time: every live node decides past the last fault
scenario_live_poll_ms = 100  # how often the live back-end reads the nodes' stores
scenario_live_resend_ms = 5_000  # re-publish an undecided tx (a node that was down may have missed it)
scenario_height_wait_ms = 300_000  # `after_height` / `wait_height` steps: the height is reached within this
scenario_wait_for_timeout_ms = 120_000  # default `timeout_ms` of a `wait_for` step

# Benchmarks
bench_nodes_max = 32  # validators of one `bench` run (one process each on this machine)
bench_loaders_max = 8  # load processes of one `bench` run
bench_duration_ms = 30_000  # default --duration of load
bench_drain_ms = 20_000  # default --drain: wait for the backlog after the load stops
bench_warmup_ms = 3_000  # default --warmup: start-up transient left out of tx/s and latency
bench_block_interval_ms = 20  # default --block-interval-ms: short pauses, the benchmark measures throughput
bench_presign_tx_per_s_max = 4_000  # with --max: txs pre-signed per second of --duration (above the 3,000 tx/s goal
#   of issue 12: at 1,500 a faster node ran out of txs before --duration ended; pre-signing costs ~10 s of load CPU per minute)
bench_ready_wait_ms = 120_000  # every node's first status record (n up to bench_nodes_max on one machine)
bench_presign_timeout_ms = 900_000  # a load process pre-signing its txs (slow machines, big --duration)
bench_load_slack_ms = 60_000  # beyond --duration, a load process reports done within this
bench_settle_ms = 1_000  # after the drain: the last decisions reach the observer
bench_observer_reconnect_ms = 200  # the observer's pause before reconnecting to the broker
bench_drain_poll_ms = 500  # how often the drain looks at the first node's store
bench_drain_txs_max = 200  # the drain waits for (at most) the last this many sent txs
bench_verify_ms = 1_000  # measuring the Ed25519 verify rate
load_burst_frames_max = 64  # publishes between two yields to the event loop (lets paho write and read)
load_tick_ms = 2  # pacing tick of a load publisher
load_mempool_txs_max = 4_096  # --max: a loader pauses while some node's mempool + backlog exceeds this

assert bench_nodes_max <= members_max
assert bench_warmup_ms < bench_duration_ms
assert load_burst_frames_max <= bus_client_messages_queued_max

# Simulator
sim_nodes_max = 128  # `sim --nodes` (issue 12: `consortium sim --nodes 100` must run)
kv_part_bytes_max = 64  # a key or value of the simulator's toy KV application
violations_kept_max = 50  # violation messages kept per run (every one is counted)
replay_memory_frames_max = 256  # frames a replaying byzantine node remembers
sim_height_time_ms = 5_000  # default time limit: virtual time per height beyond the block interval
sim_advance_ms_max = 400 * 86_400_000  # an `advance` fault: a clock jump of at most 400 days
sim_fault_delay_ms_max = 600_000  # a `delay` fault: extra latency per message
sim_skew_ms_max = 600_000  # a `skew` fault: one node's clock off by at most this either way

assert rounds_ahead_max <= rounds_max

# CLI
member_name_chars_max = 200  # a member's or party's display name in the members directory
dashboard_redraw_ms = 500  # the `up` / `watch` dashboard redraws this often
dashboard_plain_line_ms = 5_000  # without a terminal, one summary line this often

# Node boot: store checks and catching up before signing (node runtime)
store_check_verify_heights_max = 256  # newest heights whose certificate signatures boot re-verifies
#   (about 1.2 ms a height for 7 validators: older heights and every last_commit get the structural
#   checks only, so a big store still boots in well under a second)
boot_listen_ms = 800  # after connecting, a node reads peers' status records this long before its first
#   Start: it must know how far the chain went before it signs anything (> one status_interval_ms)

assert boot_listen_ms > status_interval_ms, "every running peer refreshes its record within the window"

# Transaction refusals (node -> submitter, TX_REFUSED)
tx_refusals_per_s_max = 100  # TX_REFUSED frames one node sends per second: a flood of bad txs is not
#   echoed in full (each refused tx costs a signature); the submitter then waits for its --timeout

# Exploration (`consortium explore`: generated fault schedules, shrinking)
explore_nodes_max = 16  # `explore --nodes`: the largest generated consortium
explore_heights = 30  # heights each generated schedule runs to (about 30 s of virtual time)
explore_faults_max = 6  # fault episodes per generated schedule (each ends with its own heal)
explore_fault_window_ms = 20_000  # virtual: episodes start within this window (inside a ~30-height run)
explore_fault_duration_ms_max = 8_000  # virtual: one episode (crash..restart, partition..heal) lasts at most
explore_fault_duration_ms_min = 100  # virtual: shrinking never shortens an episode below this
explore_skew_ms_max = 3_000  # a generated clock skew, either way (well inside sim_skew_ms_max)
explore_delay_ms_max = 2_000  # a generated extra network delay per message
explore_shrink_runs_max = 300  # simulator runs one shrink may spend before it keeps what it has
explore_inflight_per_worker = 2  # schedules queued per worker: enough to keep it busy, few to drop on Ctrl-C
explore_replay_violations_max = 5  # failing schedules shrunk and written per explore run (the rest are counted)
explore_default_nodes_min = 4  # `explore --nodes` default range: small consortia run fastest ...
explore_default_nodes_max = 7  # ... and n <= 7 already covers f = 1 and f = 2
explore_power_max = 20  # generated unequal voting powers are 1..this
explore_quick_restart_ms_max = 600  # virtual: half the generated crashes restart within this (same height,
#   often the same round: what the double-sign guard is for); the others last up to explore_fault_duration_ms_max

# Traces and reports (sim recorder, scenario traces, consortium/report)
trace_messages_max = 60_000  # messages a trace lists one by one (send, delivery or drop); past this they are
#   only counted per node and kind: a 1,000-height 7-node run sends ~300k, which would make a ~40 MB trace
trace_line_chars_max = 64_000_000  # one trace line longer than this is refused (a header holds the scenario
#   text, far smaller; a damaged file must not make the reader hold gigabytes)
report_sequence_heights_default = 1  # heights the message sequence diagram shows when no --heights is given
report_sequence_messages_max = 3_000  # arrows drawn in the sequence diagram (one SVG path each: more is slow)
report_business_hover_chars_max = 400  # transaction detail shown on hover in the business lane

# Executor and sweeps (consortium/executor.py: local pool or Dask cluster; `consortium sweep`)
executor_inflight_per_worker = 2  # jobs queued per worker (local process or Dask thread): enough to keep it
#   busy, few to cancel on Ctrl-C
cluster_connect_timeout_ms = 2_000  # TCP connect to a `--cluster` scheduler: an unreachable one is reported (exit 2)
#   within this, so the whole command answers within 5 s; a reachable one on a LAN answers in milliseconds
cluster_handshake_timeout_ms = 10_000  # the Dask handshake once the port answered (a busy scheduler is slower)
sweep_runs_max = 100_000  # runs (grid points x seeds) one sweep may ask for: past this it is a typo (1..10000000)
#   rather than a plan; split a real giant sweep into several

# Settlement in tokenised deposits (ledger/rules/settlement.py)
token_amount_minor_max = 10**17  # a bank's token liabilities per currency, and an interbank position, stay
#   at or below this (100x the largest single amount): every balance and sum then fits the codec's int64

# UCP 600 roles and the pinned banking calendar (ledger/banking.py, calendars.py, rules/credit.py)
calendar_days_max = 2_000  # closed or make-up days one jurisdiction's genesis calendar may list: ~40 a year
#   over the covered years (a few decades at most); a larger list is a malformed genesis, not a calendar

# Exploration: twins, targeted equivocation, rolled-back restarts, shared frame decoding (sim/, explore/)
sim_frame_memo_max = 200_000  # decoded frames one Simulation remembers to share between its nodes (a pure
#   memo, see sim.node.FrameMemo); a 30-height 7-node run sends ~20k distinct frames, so it rarely forgets
explore_twins_rounds_max = 4  # rounds of a height a twins schedule cuts (0..this-1; later rounds are whole)
explore_twins_groups_max = 3  # groups one round's partition splits the instances into (Twins: 2 or 3)
explore_rollback_blocks_max = 8  # a rolled-back restart forgets at most this many decided blocks

# DCSA documents and vessel sharing (ledger/dcsa.py, rules/cargo.py)
vsa_partners_max = 16  # partner carriers one carrier may declare in all its vessel-sharing agreements: each is
#   one more LOAD index read per container of its shipped-on-board documents (a VSA joins a handful of lines)
sim_rollback_blocks_max = 1_000_000  # a `rollback` fault: blocks a restarted store may have lost (any number
#   up to the whole chain; beyond its height the store is simply empty)

# Live throughput: batched TX frames (issue 12; client/submit.py TxBatcher, bench/load.py, node runtime)
tx_frame_overhead_bytes = 1_024  # room a TX frame keeps for its envelope: version, chain and sender ids (at
#   most 96 bytes), kind, the body's key and array header, the 66-byte signature, with a wide margin
tx_batch_tx_header_bytes = 5  # msgpack header of one tx inside a TX frame's list (bin 32; fewer for short txs)
tx_batch_bytes_max = frame_bytes_max - tx_frame_overhead_bytes  # txs (with their 5-byte bin headers) one TX
#   frame carries: a batch always fits one frame, so a publisher never has to split a frame after sealing it
tx_batch_txs_max = 4_096  # txs in one TX frame: a node admits a frame's txs 32 at a time between votes; more
#   than a node's mempool feed (4 blocks of 512) in one frame would only wait in its backlog
tx_batch_flush_ms = 4  # a batching publisher sends what it holds at most this long after the first tx came:
#   a few ms of added latency, against ~100x fewer frames for every node to receive and check
bench_raft_ops_per_turn = 256  # --against-raft: ops a Raft leader process submits per event-loop turn (batched,
#   like our TX frames); its commit callbacks bound what is in flight
bench_raft_inflight_max = 20_000  # --against-raft: submitted but not yet committed ops of the Raft leader
bench_raft_ready_wait_ms = 60_000  # --against-raft: the Raft cluster elects a leader within this
bench_raft_op_bytes = 512  # --against-raft: bytes of one Raft log operation (a workload tx is ~0.3-2 KB)
decided_txs_remembered_max = 65_536  # hashes of recently decided txs a node keeps: a tx still in its backlog
#   when a block took it (it came first in another node's proposal) is dropped without a check or store read

assert tx_batch_bytes_max + tx_frame_overhead_bytes <= frame_bytes_max
assert tx_batch_txs_max <= codec_items_max
assert tx_bytes_max + tx_batch_tx_header_bytes <= tx_batch_bytes_max, "any admissible tx fits a frame alone"

# Bridged topology: two jurisdictions' brokers and the link relay between them (bus/relay.py, bus/bridge.py)
relay_rtt_ms_default = 30  # round trip the link relay adds by default (half each way): Shanghai - Hong Kong
#   over a leased line is 25-35 ms
relay_jitter_ms_default = 3  # +- uniform jitter on each one-way delay (order is kept, so it never reorders)
relay_latency_ms_max = 10_000  # one-way latency or jitter a command may ask for: more is a typo, and held
#   bytes would pile up in the relay's memory
relay_chunk_bytes_max = 65_536  # bytes the relay reads (and delays as one unit) at a time
relay_connect_timeout_ms = 2_000  # the relay gives up reaching the far broker after this (the bridge retries)
relay_control_poll_ms = 50  # the relay reads its control file this often: a cut takes effect within it
relay_ack_timeout_ms = 3_000  # `consortium link ...` waits this long for the relay to confirm a command
bridge_keepalive_s = 5  # MQTT keepalive of the bridge connection (mosquitto's minimum): a one-way cut is noticed within ~8 s
bridge_restart_s = 1  # the bridge reconnects this long after losing the link (mosquitto's restart_timeout)
bridge_ready_timeout_ms = 10_000  # both brokers must see each other through the bridge within this at start
broker_memory_bytes_max = 1_073_741_824  # mosquitto's memory_limit: past it a publish is refused (and its
#   client disconnected) instead of the machine swapping; the ACL bounds retained messages far below it
relay_state_heartbeat_ms = 1_000  # the relay rewrites its state file at least this often (and at once on a command)
relay_state_stale_ms = 3_000  # a relay state older than this: the relay is not running (`link` says so, exit 2)
report_step_hover_max = 5_000  # node steps above which the timeline's step bars carry no hover text of their own
#   (the commit ticks still do): a 1,000-height run has ~28k, whose texts double the time to draw the lanes
sim_round_cut_ms = 3_000  # virtual: a Twins round partition cuts its step's messages for this long from the
#   first one it cut; later sends (retransmissions) pass. Permanent cuts would stall a round for ever: a
#   Tendermint step that needs 2/3 of the votes to arm its timeout (L34, L47) never times out without them
relay_held_bytes_max = 16 * 1_048_576  # bytes one direction of one connection may hold in the relay (latency x
#   throughput is far less: ~300 kB at 100 Mbit/s and 30 ms); past it the relay stops reading (TCP backpressure)
verify_memo_triples_max = 100_000  # valid signatures a crypto.VerifyMemo remembers (a pure memo owned by one
#   Simulation); a 30-height 7-node run checks a few thousand distinct certificate signatures
explore_twins_partitions_listed_max = 4_096  # set partitions a twins schedule draws from a full list; a
#   larger space (10+ instances) is sampled with random labels instead
sim_twin_skew_ms = 1  # a twin's second instance runs its clock this much ahead: when both lead a round, their
#   blocks differ (block time), so the pair equivocates by construction

# Twins across processes: a validator's second OS process under the same key (node/twins.py)
live_twin_skew_ms = 1  # a twin process's ledger clock runs this much ahead of its member's (as sim_twin_skew_ms):
#   when both lead a round in the same millisecond their blocks still differ, so the pair equivocates

# MQTT-level faults (bus/nemesis.py, bus/relay.py rate and duplication; scenario faults mqtt-duplicate,
# retained-replay, slow-consumer, session-takeover)
relay_rate_bps_min = 1_000  # a slow-consumer cap below this is no consumer at all: a 1 MB frame (the
#   largest) would take more than 15 minutes, beyond every timeout and wait of a live run
relay_rate_bps_max = 1_000_000_000  # a cap above ~8 Gbit/s would not slow anything: more is a typo
nemesis_takeover_hold_ms_default = 2_000  # session-takeover: the intruding connection holds the node's
#   session this long (the node reconnects at once under a fresh id; the intruder then goes away)
nemesis_takeover_hold_ms_max = 60_000  # a longer hold tests nothing more: the node is back on within its backoff
nemesis_status_wait_ms = 5_000  # session-takeover: the node's status record (its client id) arrives within
#   this (retained: at once; a fresh one every status_interval_ms)
nemesis_capture_wait_ms = 3_000  # retained-replay: reading the retained records and first consensus frames
#   to replay later stops after this (retained ones come at once on subscribing)
nemesis_capture_frames_max = 64  # retained-replay: consensus frames kept to re-publish retained later (a few
#   per member: each becomes one more retained message the broker hands every new subscriber)
nemesis_publish_timeout_ms = 5_000  # one nemesis publish (replay, takeover connect) waiting for the broker

# Record live, replay offline: the input log of a live node (node/record.py, node/replay.py)
input_log_record_bytes_max = 64 * 1_048_576  # one record of an input log: a frame (frame_bytes_max) or a boot
#   record (a decided block, its certificate and the guard's signed frames) is far less; a larger length
#   read from a file is garbage, not a record to allocate
input_log_digest_bytes = 16  # BLAKE2b digest of one step's actions in the log: 128 bits, so a replay that
#   differs cannot match by chance; 16 bytes a step keeps the log small
replay_progress_records_max = 2_000  # replay-node updates its progress bar at least once per this many records
# Reports (consortium/report): rendering a long run's report in the browser
report_lanes_binned_steps_min = 5_000  # node steps from which the timeline's lanes are one heatmap of time bins
#   (an image) instead of SVG line segments: a 1,000-height 7-validator run has ~28k (~86k line points), ~3 s to
#   draw as SVG on this machine (WebGL no better: software GL), ~0.2 s as a heatmap
report_lane_bin_ms_min = 50  # the heatmap lanes' time resolution: a bin shows the step a validator is in at its start
report_lane_bins_max = 20_000  # bins per lane at most (a longer run gets wider bins): 7 lanes x 20k ~ 0.4 MB of JSON
live_evidence_listed_max = 100  # committed evidence items a live scenario run lists one by one in its checks
#   (all are counted): a long twins run commits one every few heights
observer_frames_max = 200_000  # consensus frames the live trace's bus observer keeps one by one (~21 a height for
#   7 validators, plus retransmissions); past it they are only counted (the trace lists trace_messages_max anyway)
observer_connect_wait_ms = 10_000  # a live run waits this long for its bus observer to subscribe (else the trace
#   has no per-node steps, and says so) - generous: the machine may be loaded
observer_reconnect_ms = 200  # the bus observer's pause before reconnecting to the broker
observer_stop_wait_ms = 2_000  # joining the bus observer's thread at the end of a live run

# Simulator speed and scale (issue 12, simulator half: sim/, consensus/ performance)
sim_kv_verdicts_max = 65_536  # txs whose KVApp verdict (problem, hash) is remembered: a pure memo shared by
#   the nodes of a process (each tx is checked at admission, in check_block and at apply by every node);
#   a 1,000-height run at 20 tx/s offers ~21k distinct txs
validators_max = 128  # validators of one set: a live consortium has at most members_max, the simulator up to
#   sim_nodes_max; bounds the signatures a commit certificate or a proof of lock may carry
assert members_max <= validators_max and sim_nodes_max <= validators_max
assert future_messages_max >= 4 * validators_max  # a next-height proposal and votes of every validator fit

bus_echo_silence_ms = 6_000  # a node that published and heard nothing at all (not even its own frames, which
#   the broker echoes; its status alone goes out every status_interval_ms) for this long reconnects: its session
#   was taken over or is dead (amqtt keeps a taken-over socket open, answering pings). Under 1.5 x keepalive
nemesis_reconnect_wait_ms = 20_000  # session-takeover: the node shows a new connection within this (it
#   notices at once on mosquitto, within bus_echo_silence_ms on amqtt, then one status refresh)

assert bus_echo_silence_ms < 1.5 * bus_keepalive_ms, "a deaf session is noticed before paho's own keepalive would"

# Live traces from the nodes' input logs (issue 11: timeouts, receipts by kind; scenario/tracing.py)
trace_receipt_match_ms = 250  # a receipt in a live trace is matched to the latest broadcast of its sender, kind,
#   height and round that the bus observer saw up to this long after the receipt (the observer, a Python thread,
#   may get a frame a few ms after a node did); well under the re-send interval (the sum of the three round
#   timeouts, seconds), so a receipt is not matched to the next re-send nor to the one before

# Executor (consortium/executor.py): Ctrl-C during explore and sweep
executor_interrupt_poll_ms = 100  # the local pool's parent notices Ctrl-C within this while it waits for
#   results (SIGINT only sets a flag, so the interrupt never lands inside the pool's own locks)

# Simulator speed, second round (issue 12: sim/, consensus/ performance)
sim_kv_blocks_max = 4_096  # blocks whose KVApp check and effect (root, writes, results) are remembered: a pure
#   memo shared by the nodes of a process (each of n nodes and the reference replay check and apply the same
#   block); one entry per decided height (a few more under Byzantine proposers), so a few thousand heights' worth
sim_event_seq_bits_max = 40  # the simulator's heap orders events by (virtual ms << this) + sequence number: one int
#   comparison per heap step; 2^40 events (~10^12) is beyond any run (a 1,000-height n = 100 run makes ~10^8)

# Live node latency (issue 12: node/, bus/ performance)
tx_turn_ms = 2  # a turn of tx admissions ends once it took this long (besides txs_per_turn_max): votes, timers
#   and finished store writes wait for the end of a turn, and 32 DCSA txs took ~10 ms, a delay added to every
#   consensus step of a height at 500 tx/s; one loop iteration costs ~10 us, so 2 ms turns cost < 1 % at --max
gc_freeze_after_full_ms = 20  # a node freezes (gc.freeze) what survived a full collection that took this long:
#   the next full collections then skip the long-lived ledger state (230 ms -> ~1-6 ms for 10,000 workload txs'
#   state); short ones are left alone, so a freeze (and the few transient cycles it keeps) needs new state first

# Paced load processes (issue 12: bench/load.py, client/submit.py TxBatcher)
load_flush_ms = 20  # a paced load process (`bench --rate`) sends a TX frame this long after its first tx was
#   due (one wake-up per frame). Each frame costs every node a receipt (~0.1-0.3 ms of CPU: socket, paho, loop
#   wake, check) and each ms in a batch is a ms of a tx's wait: at 250 tx/s per process, 6 txs and 42 frames/s
#   instead of ~2 and 125 (tx_batch_flush_ms with a 2 ms tick), for ~6 ms more mean wait; one bench block interval

# Live node per-height overhead (issue 12, third round: node/runtime.py, bus/adapter.py)
bus_write_queue_frames_max = 2_000  # our frames handed to paho and not yet written to the socket (QoS 0 is
#   written at once, not awaited): beyond this the broker connection is stalled and a new frame is counted in
#   unsent["write_queue_full"] instead of queued; > bus_outbox_frames_max, so a reconnect's outbox always fits
bus_topics_cached_max = 1_024  # parsed topics remembered (a node hears a few per member and kind); beyond: cleared,
#   so hostile topic names cannot grow memory

assert bus_write_queue_frames_max > bus_outbox_frames_max, "the outbox is flushed into the write queue"
bus_read_bytes_max = 65_536  # bytes a node's socket reader looks at per readable event for complete QoS 0 PUBLISH
#   packets (taken in one recv; bigger frames, e.g. 1 MB proposals, go through paho's reader): bounds one event's
#   work, so a flood of small frames cannot keep the loop in the reader

# Bench ceilings (issue 12, fourth round: bench/live.py, bench/ledger.py)
bench_ledger_tx_count = 4_000  # txs through one ledger to measure a validator's ledger path per CPU-second before a
#   live bench (`ledger_ceiling`): ~0.6 s of CPU plus ~1 s to generate and sign them; its 4,000 txs' state is
#   small; 20,000 txs gave 7,664-7,670 tx per CPU-second where 4,000 gave 7,011-8,112 (noise, not state size)
bench_ledger_block_tx_count = 512  # block size of that measurement: about a --max block at n = 4 (300-500 txs)
