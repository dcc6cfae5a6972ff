"""Command registrations. Each command lives in its own module under cli/."""

from consortium.cli import init_cmd, sim_cmd  # noqa: F401
