"""The Celery worker: runs the converter for one job at a time per process. Never imports Flask."""
