"""Pointing this process's Celery producer at another broker for one test."""

import contextlib
import os


@contextlib.contextmanager
def use_broker(url: str, transport_options: dict | None = None):
    """Send this process's task messages to ``url`` until the block ends.

    Celery prefers the CELERY_BROKER_URL environment variable over its own config
    (CI sets it to the shared Redis), so both are switched, and kombu's connection
    pools are reset on the way in and out."""
    from kombu import pools

    from project.celery import app

    def reset_pools():
        pools.reset()  # kombu's process-wide pools, keyed by connection
        app._pool = None
        app.amqp._producer_pool = None

    previous = (app.conf.broker_url, app.conf.broker_transport_options, os.environ.get("CELERY_BROKER_URL"))
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options if transport_options is not None else (
        {"visibility_timeout": 3600} if url.startswith("redis") else {})
    reset_pools()
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.broker_transport_options, env = previous
        if env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = env
        reset_pools()
