"""`make run`'s first step: check the settings, print where things will be, and say which
Procfile processes to start (Redis only when REDIS_URL does not answer and is local).

Prints the process names on stdout, everything for a person on stderr; exits 2 on a bad setting.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import redis

from common.settings import settings_or_exit

PROCESSES = ["api", "worker", "beat", "flower"]


def main() -> int:
    settings = settings_or_exit("make-run")
    host = urlsplit(settings.redis_url).hostname
    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping()
        processes, redis_note = PROCESSES, f"using the Redis at {settings.redis_url}"
    except redis.RedisError:
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"REDIS_URL ({settings.redis_url}) does not answer", file=sys.stderr)
            return 2
        processes, redis_note = ["redis", *PROCESSES], "starting redis-server (var/redis)"
    api = settings.api_bind.replace("0.0.0.0", "127.0.0.1")
    print(f"""
  API     http://{api}          (curl http://{api}/health/ready)
  Flower  http://{settings.flower_address.replace('0.0.0.0', '127.0.0.1')}:{settings.flower_port}
  Redis   {redis_note}
  Data    {settings.data_dir}
  Ctrl-C stops everything.
""", file=sys.stderr)
    print(" ".join(processes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
