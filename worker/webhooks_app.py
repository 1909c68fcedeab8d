"""The webhooks worker (`celery -A worker.webhooks_app worker -n webhooks@%h`): worker/app.py's
Celery app, consuming the webhooks' queue alone, with WEBHOOK_CONCURRENCY threads.

Deliveries wait on the network, not on a CPU: threads (no fork, one connection pool) hold many at
once cheaply, and none of them is a conversion process. Each attempt ends by its own deadline
(WEBHOOK_ATTEMPT_TIMEOUT; Celery's time limits do not apply to threads), and a client's
deliveries beyond WEBHOOK_MAX_PER_KEY wait in the queue, so a few slow receivers cannot take
every thread either.
"""

from __future__ import annotations

from celery import signals

from common import tracing
from jobs import WEBHOOK_QUEUE

from .app import app, consume, settings
from .health import Heartbeat
from .recovery import Recovery

consume(WEBHOOK_QUEUE)
# No heartbeat and no recovery of conversions: the live workers /health/ready and
# xmlconv_workers count are conversion capacity, which this worker adds nothing to (its health
# check pings it: `python -m worker.health --webhooks`).
app.steps["worker"].discard(Heartbeat)
app.steps["worker"].discard(Recovery)
app.conf.update(
    worker_pool="threads",
    worker_concurrency=settings.webhook_concurrency,
    worker_max_memory_per_child=None,  # a prefork setting: threads share one process
)


@signals.worker_init.connect
def _trace_deliveries(**_: object) -> None:
    """Traces in the webhooks worker's one process (threads: no pool process is forked, no
    worker_process_init is sent), when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    tracing.setup(settings, "webhooks")


@signals.worker_shutdown.connect
def _flush_traces(**_: object) -> None:
    tracing.shutdown()


__all__ = ["app"]
