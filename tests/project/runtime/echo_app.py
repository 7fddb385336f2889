"""A Celery app with one task and no Django, on Kiln's embedded broker under $ECHO_BROKER_DIR:
what the broker tests run a real worker with."""

import os
from pathlib import Path

from celery import Celery

from project.runtime.broker import transport_options

folder = Path(os.environ["ECHO_BROKER_DIR"])
app = Celery("echo", broker="filesystem://")
app.conf.update(broker_transport_options=transport_options(folder), task_acks_late=True, worker_hijack_root_logger=False,
                task_default_queue="echo", broker_connection_retry_on_startup=True)


@app.task(name="echo.write")
def write(name: str, text: str) -> None:
    (folder / "out").mkdir(exist_ok=True)
    (folder / "out" / name).write_text(text)
