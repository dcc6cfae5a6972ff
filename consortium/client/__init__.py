"""What a user's process runs against a live consortium: submit signed transactions, read status."""
