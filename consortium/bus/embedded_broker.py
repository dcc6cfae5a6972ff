"""The embedded broker: amqtt (pure Python) in its own process.

Run: python -m consortium.bus.embedded_broker --port P [--host 127.0.0.1] [--exit-with-parent]

Its own process so that a node's event loop never shares a GIL with the broker
and so that tests and `consortium down` can kill it like any real broker.
Anonymous clients are allowed (it is the zero-install local default; use
mosquitto for passwords and ACLs). amqtt has no packet-size limit: every
consortium adapter checks frame sizes itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from consortium import limits


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt config: one TCP listener, anonymous auth, no per-packet logging
    (the default logger plugins would cost more than the routing itself)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(host: str, port: int, exit_with_parent: bool) -> None:
    from amqtt.broker import Broker  # imported here: only the broker process pays for it

    broker = Broker(broker_config(host, port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(stop)) if exit_with_parent else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.shutdown(), timeout=limits.embedded_broker_shutdown_timeout_ms / 1000)


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when the starting process dies (we get re-parented), so a crashed
    test run or CLI leaves no broker behind."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(limits.parent_poll_ms / 1000)
    stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="embedded-broker %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.host, args.port, args.exit_with_parent))


if __name__ == "__main__":
    main()
