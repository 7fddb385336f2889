"""Pointing this process's Celery app at another broker, or other settings, for one test."""

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

    env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    options = transport_options if transport_options is not None else (
        {"visibility_timeout": 3600} if url.startswith("redis") else {})
    reset_pools()
    try:
        with celery_conf(broker_url=url, broker_transport_options=options):
            yield app
    finally:
        if env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = env
        reset_pools()


def set_celery_conf(**values) -> dict:
    """Set Celery settings by their short names (``task_always_eager=True``); returns the
    previous values, to pass back in.

    The app reads Django settings under the ``CELERY_`` namespace, so the namespaced key
    is the one that counts: Celery 5.6 ignores an assignment to the short name
    (``app.conf.task_always_eager = True`` leaves it False)."""
    from project.celery import app

    keys = {f"CELERY_{name.upper()}": value for name, value in values.items()}
    previous = {name: app.conf.get(f"CELERY_{name.upper()}") for name in values}
    app.conf.update(keys)
    return previous


@contextlib.contextmanager
def celery_conf(**values):
    """``set_celery_conf`` for the length of a block."""
    previous = set_celery_conf(**values)
    try:
        yield
    finally:
        set_celery_conf(**previous)
