"""The kit that tests/ and bench/ build real services with (a package, so both import it
without editing sys.path: pytest's `pythonpath`, and `python -m bench.<script>` from the
repository's root).

- waiting.py: free ports, polling until something holds;
- service.py: one process of a stack (start, ready, log, signals, stop, start again);
- redis_server.py: a redis-server and the databases it hands out, one per user;
- s3_server.py: a real S3 server (SeaweedFS) with one bucket;
- commands.py: the environment and the command line of each service process;
- stack.py: ONE stack builder: a database, the API, workers, beat, Flower, S3;
- jobs_api.py: what a client does with a stack's API (submit, read and wait for a job);
- benchmark.py: how a benchmark stops on a signal and exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MiB = 1024 * 1024
