"""moto's server on 127.0.0.1, for tests (a session fixture) and benchmarks (its own process).

moto in server mode is a real HTTP endpoint, so the backend under test uses
boto3 unchanged (``endpoint_url``), and the counting proxy can sit in front of
it. Between tests the state is cleared with ``POST /moto-api/reset`` (about a
millisecond), not by restarting the server (about 0.2 s).

What moto accepts and real AWS rejects is listed in docs/stepfunctions.md;
flowplan's own checks must catch those before any call, so no test may depend
on moto's leniency.

Run standalone: ``python -m tests.support.moto_server --port 0`` prints its URL
(one flushed line) and serves until killed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import urllib.request

__all__ = ["ACCOUNT_ID", "MotoServer", "main", "start_moto_server"]

#: The account moto answers as (every ARN the tests write uses it).
ACCOUNT_ID = "123456789012"


class MotoServer:
    """A running ``ThreadedMotoServer``: ``.url``, ``reset()``, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO; benchmarks push thousands through.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._server.start()
        bound_host, bound_port = self._server.get_host_and_port()
        self.host = str(bound_host)
        self.port = int(bound_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource of every service and account (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto_server(port: int = 0) -> MotoServer:
    """Start moto's server on 127.0.0.1 (``port=0``: any free port)."""
    return MotoServer(port=port)


def main(argv: list[str] | None = None) -> int:
    """Run moto's server as its own process; print its URL and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.moto_server", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = start_moto_server(args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
