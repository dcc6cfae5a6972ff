"""Command registrations. Each command lives in its own module under cli/."""

from consortium.cli import explore_cmd as explore_cmd  # noqa: F401
from consortium.cli import init_cmd, sim_cmd  # noqa: F401
from consortium.cli import live_bench_cmd as live_bench_cmd  # noqa: F401
from consortium.cli import live_cmd as live_cmd  # noqa: F401
from consortium.cli import node_cmd as node_cmd  # noqa: F401
from consortium.cli import query_cmd as query_cmd  # noqa: F401
from consortium.cli import replay_cmd as replay_cmd  # noqa: F401
from consortium.cli import report_cmd as report_cmd  # noqa: F401
from consortium.cli import run_cmd as run_cmd  # noqa: F401
from consortium.cli import sweep_cmd as sweep_cmd  # noqa: F401
from consortium.cli import tx_cmd as tx_cmd  # noqa: F401
