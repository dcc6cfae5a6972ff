"""The node runtime: one consortium member's process (replica + ledger + store + bus + timers), its store, clock, network filter, status record, and the launch of node processes."""
