"""Gunicorn settings for the API (`gunicorn -c gunicorn_config.py 'api:create_app()'`).

Everything comes from common/settings.py (API_* variables, read and checked once); the
defaults are in docs/deployment.md.
"""

import os

from common.settings import settings_or_exit

_settings = settings_or_exit("api")

bind = _settings.api_bind
proc_name = "xmlconv-api"

# Threads, not processes, carry concurrent uploads. A 300 MB upload is a thread blocked on a
# socket for minutes while the body streams to disk in constant memory; with gthread it holds
# one of API_WORKERS x API_THREADS threads and nothing else, so slow clients never starve the
# quick requests (status polls, health checks). Not gevent/eventlet: the upload path hashes and
# (for gzip bodies) inflates every chunk in C, which releases the GIL for a thread but would
# block a whole event loop; monkey-patching would also reach into Celery/kombu's publishing and
# redis-py, and eventlet is deprecated.
worker_class = "gthread"
workers = _settings.api_workers  # default: max(2, the container's CPUs)
threads = _settings.api_threads

# With gthread, `timeout` is how long a worker's main loop may go silent before the arbiter
# kills it, not a limit on a request: a slow upload can take as long as it takes.
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
