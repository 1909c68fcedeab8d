"""Gunicorn settings for the API (`gunicorn -c gunicorn_config.py 'api:create_app()'`).

Everything comes from common/settings.py (API_* variables, read and checked once); the
defaults are in docs/deployment.md.
"""

import fcntl
import gc
import glob
import itertools
import os
import shutil
import tempfile

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
# docs/deployment.md has the numbers. Back to threads: add `-k gthread` (no idle timeout then,
# nor the floor under a download's read rate, DOWNLOAD_MIN_BYTES_PER_SECOND).
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


# GET /metrics (api/metrics.py) answers for every process: each writes its HTTP figures to files
# in one directory that prometheus_client's multiprocess mode reads whole. The directory is new
# for each start of this master (an old one's counts would be added in) and goes with it; in
# memory when /dev/shm exists. prometheus_client is not imported here, in the master.
_METRICS_PARENT = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_METRICS_PREFIX = "xmlconv-metrics-"
_METRICS_LOCK = "owner.lock"  # held by the master and its processes for as long as they live


def on_starting(server):
    for directory in glob.glob(os.path.join(_METRICS_PARENT, _METRICS_PREFIX + "*")):
        _remove_if_abandoned(directory)
    server.metrics_dir = tempfile.mkdtemp(prefix=_METRICS_PREFIX, dir=_METRICS_PARENT)
    server.metrics_lock = open(os.path.join(server.metrics_dir, _METRICS_LOCK), "w")  # noqa: SIM115
    fcntl.flock(server.metrics_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # Set for the processes forked from here (prometheus_client reads it); not a setting.
    os.environ.update(PROMETHEUS_MULTIPROC_DIR=server.metrics_dir)


def _remove_if_abandoned(directory):
    """A master killed outright (SIGKILL, OOM) leaves its directory: removed once no process
    holds its lock (a lock, not a pid, so that masters in other pid namespaces are safe). One
    without a lock file yet is being made: left alone."""
    try:
        with open(os.path.join(directory, _METRICS_LOCK)) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # in use (BlockingIOError), or no lock file
        return
    shutil.rmtree(directory, ignore_errors=True)


# Each process writes to the files of a slot, the lowest one no live process holds, rather than
# of its pid: a process recycled after API_MAX_REQUESTS leaves its slot, and its counts, to its
# successor, so the files stay as many as the processes however often they recycle.
def pre_fork(server, worker):
    taken = {getattr(other, "metrics_slot", None) for other in server.WORKERS.values()}
    worker.metrics_slot = next(slot for slot in itertools.count() if slot not in taken)


def post_worker_init(worker):
    from api.metrics import use_process_slot

    use_process_slot(worker.metrics_slot)
    # The app's objects (Flask, Celery, the contract, ...) live as long as the process: out of
    # the collector's sight, a full collection no longer walks them all in the middle of
    # requests (measured: the polls' p99 was set by those pauses).
    gc.freeze()


def worker_exit(server, worker):
    """gevent's monkey-patching made logging's module lock a greenlet-aware one, whose thread
    ident comes from gevent. Once this hook returns the process ends, and the interpreter's
    teardown destroys the handlers still held by other modules (Flask's default_handler,
    never attached: the root JSON handler serves every logger); each one's weakref callback
    takes that lock after gevent's module is torn down, and Python prints a plain-text
    `TypeError` traceback. The original lock, which gevent kept, serves the teardown."""
    import logging

    from gevent import monkey

    if monkey.is_object_patched("logging", "_lock"):
        logging._lock = monkey.get_original("logging", "_lock")


def on_exit(server):
    if getattr(server, "metrics_dir", None):
        shutil.rmtree(server.metrics_dir, ignore_errors=True)
