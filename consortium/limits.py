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
