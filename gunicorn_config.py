"""Gunicorn settings for the API (`gunicorn -c gunicorn_config.py 'api:create_app()'`).

Everything comes from common/settings.py (API_* variables, read and checked once).
"""

from common.settings import settings_or_exit

_settings = settings_or_exit("api")

bind = _settings.api_bind
# Threads, not processes, carry concurrent uploads: each is I/O bound and streams in
# constant memory, so a few processes with many threads hold many slow clients cheaply.
worker_class = "gthread"
workers = _settings.api_workers
threads = _settings.api_threads
# A 300 MB upload over a slow link takes minutes; the timeout only fires for a stuck worker.
timeout = _settings.api_timeout
graceful_timeout = _settings.api_graceful_timeout
keepalive = _settings.api_keepalive
# Recycle workers now and then (jitter: not all at once) to bound slow leaks.
max_requests = _settings.api_max_requests
max_requests_jitter = _settings.api_max_requests_jitter
forwarded_allow_ips = _settings.forwarded_allow_ips

# JSON on stdout: both logs go through common/logs.py.
logger_class = "api.gunicorn_logging.JsonLogger"
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()

# No runtime control socket: one fixed path per user collides between instances on one host,
# and deployments manage the process through signals and the orchestrator.
control_socket_disable = True
