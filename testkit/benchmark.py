"""How a benchmark that starts processes stops: on SIGTERM as on Ctrl-C, its finally blocks
stopping what it started, and with an exit status that says so."""

from __future__ import annotations

import signal
import sys
import threading


def _raise_interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def run_benchmark(main) -> None:
    """Exit with `main()`'s status; 130 when interrupted (every process was stopped)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)
