"""Gunicorn settings for the API (`gunicorn -c gunicorn_config.py 'api:create_app()'`).

Everything comes from common/settings.py (API_* variables, read and checked once); the
defaults are in docs/deployment.md.
"""

import os

from common.settings import settings_or_exit

_settings = settings_or_exit("api")

bind = _settings.api_bind
proc_name = "xmlconv-api"

# Greenlets, not threads, carry the connections: gevent's worker, plus an idle timeout on every
# client socket (api/gunicorn_worker.py; API_CLIENT_TIMEOUT, a stalled upload gets 408). With
# gthread each connection held one of API_WORKERS x API_THREADS threads for as long as its
# client took, so 40 slowloris sockets (headers, then a trickle of body) made /health time out;
# with 100 such sockets it answered 7 of 26 probes within 5 s. Here a slow connection costs a
# greenlet (~26 KiB), up to `worker_connections` per process: /health p99 ~0.2 s with 100.
# The objection to an event loop was the CPU work of uploads; measured, it comes in 1 MiB
# chunks (hashing one ~0.8 ms, inflating one ~1.5 ms) and the upload lets other requests run
# after each (api/upload.py take_turns): /health p50 ~9 ms during a local 300 MB upload on one
# process. gevent's monkey-patching (applied before the app loads) keeps redis-py and
# Celery/kombu's publishing working, cooperatively; the integration tests run this worker.
# docs/deployment.md has the numbers. Back to threads: add `-k gthread` (no idle timeout then).
worker_class = "api.gunicorn_worker.GeventWorker"
worker_connections = 1000  # per process, gunicorn's default
workers = _settings.api_workers  # default: max(2, the container's CPUs)
threads = _settings.api_threads  # gthread only

# `timeout` is how long a worker's event loop may go silent before the arbiter kills it, not a
# limit on a request: a slow upload can take as long as it takes.
timeout = _settings.api_timeout
# On SIGTERM: stop accepting, let requests in flight (uploads included) finish this long.
graceful_timeout = _settings.api_graceful_timeout
# Keep-alive should outlast a load balancer's idle timeout (an ALB's is 60 s) behind one.
keepalive = _settings.api_keepalive
# Recycle workers now and then (jitter: not all at once) to bound slow leaks.
max_requests = _settings.api_max_requests
max_requests_jitter = _settings.api_max_requests_jitter
# Trust X-Forwarded-* only from these proxies ("*" behind a load balancer that is the only way
# in).
forwarded_allow_ips = _settings.forwarded_allow_ips

# The workers' heartbeat files: in memory, not on a container's overlay filesystem, where a
# slow disk can stall them into a timeout.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# DEBUG=true (development only): restart workers when the code changes.
reload = _settings.debug

# JSON on stdout: both logs go through common/logs.py.
logger_class = "api.gunicorn_logging.JsonLogger"
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()

# No runtime control socket: one fixed path per user collides between instances on one host,
# and deployments manage the process through signals and the orchestrator.
control_socket_disable = True
