"""The counting proxy as its own process, optionally with a fixed delay per call.

``python -m bench.proxy --upstream URL [--delay SECONDS] --port 0`` prints its URL and serves until
SIGTERM. It is ``tests/support/proxy.py`` unchanged, plus one ``Delay`` rule on every request when
``--delay`` is given (the latency benchmark: 20 ms per call). Counts are read over HTTP
(``GET /__proxy__/counts``, ``POST /__proxy__/reset``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.support.proxy import Delay, ProxyRequest, start_proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    args = parser.parse_args(argv)
    proxy = start_proxy(args.upstream, port=args.port, timeout=600.0)
    if args.delay > 0:
        delay = Delay(args.delay)

        def every_call(request: ProxyRequest) -> Delay:
            return delay

        proxy.rules.append(every_call)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(proxy.url, flush=True)
    stop.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
