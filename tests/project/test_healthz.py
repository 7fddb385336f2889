"""/healthz: what a load balancer sees, with the database and the broker up and down."""

import json
import logging
import os
import socket
from pathlib import Path

import pytest
from django.db import connection

from project import health
from project.runtime import broker as embedded_broker
from tests.brokers import use_broker

# A probe as a load balancer sends it: plain HTTP, to the backend's own address, no cookies.
PROBE = {"HTTP_HOST": "10.0.0.7:8000", "secure": False}


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    monkeypatch.setattr(health, "_last_state", {})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def production(settings):
    """The production settings a probe must get past: HTTPS redirect, a host list without the backend's address."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["kiln.example.com"]


@pytest.mark.postgres
@pytest.mark.redis
def test_healthz_is_200_with_postgres_and_redis_up_for_a_plain_http_probe_with_an_unknown_host(client, db, production):
    with use_broker(os.environ["REDIS_URL"]):
        response = client.get("/healthz", **PROBE)
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert response["Content-Type"] == "application/json" and response["Cache-Control"] == "no-store"
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert client.head("/healthz/", **PROBE).status_code == 200


@pytest.mark.postgres
def test_healthz_is_503_naming_the_broker_when_redis_is_down_and_logs_it_once_not_per_probe(client, db, production,
                                                                                          caplog):
    down = f"redis://:hunter2-secret@127.0.0.1:{_closed_port()}/0"
    with caplog.at_level(logging.INFO), use_broker(down):
        answers = [client.get("/healthz", **PROBE) for _ in range(3)]
    for response in answers:
        assert response.status_code == 503
        assert response.json() == {"database": "ok", "broker": "down"}
        assert b"hunter2" not in response.content and b"127.0.0.1" not in response.content
    lines = [r for r in caplog.records if r.name in ("project.health", "django.request")]
    assert [(r.name, r.levelname) for r in lines] == [("project.health", "ERROR")]
    assert lines[0].getMessage().startswith("healthz: the broker is down (ConnectionError")


@pytest.mark.postgres
@pytest.mark.redis
def test_healthz_is_503_naming_the_database_while_postgres_is_unreachable_and_200_once_it_is_back(
        client, transactional_db, production, caplog):
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(_closed_port())
    try:
        with caplog.at_level(logging.INFO), use_broker(os.environ["REDIS_URL"]):
            down = client.get("/healthz", **PROBE)
            connection.settings_dict["PORT"] = port
            back = client.get("/healthz", **PROBE)
    finally:
        connection.settings_dict["PORT"] = port
        connection.close()
    assert down.status_code == 503 and down.json() == {"database": "down", "broker": "ok"}
    assert back.status_code == 200 and back.json() == {"database": "ok", "broker": "ok"}
    said = [r.getMessage() for r in caplog.records if r.name == "project.health"]
    assert said[0].startswith("healthz: the database is down (OperationalError") and said[1] == "healthz: the database is back"


def test_healthz_on_the_embedded_broker_checks_its_folder(client, db, tmp_path):
    folder = tmp_path / "broker"
    options = embedded_broker.transport_options(folder)
    with use_broker("filesystem://", options):
        assert client.get("/healthz").json() == {"database": "ok", "broker": "ok"}
        Path(options["data_folder_in"]).rmdir()
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"database": "ok", "broker": "down"}
    assert str(tmp_path) not in response.content.decode()


def test_healthz_answers_only_get_and_head(client, db):
    response = client.post("/healthz")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert json.loads(client.get("/healthz").content).keys() == {"database", "broker"}


@pytest.mark.postgres
@pytest.mark.redis
def test_healthz_answers_503_while_the_database_host_takes_connections_but_never_answers(
        client, transactional_db, production):
    """A database host that is hung (or a firewall that completes the handshake): without a
    connect timeout libpq waits for its first answer for ever, and every probe holds a gunicorn
    thread until all of them are stuck. The 30 s here are generous; the fault it catches lasts for ever."""
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes each handshake; nobody ever reads or answers
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(silent.getsockname()[1])
    answers = []
    try:
        with use_broker(os.environ["REDIS_URL"]):
            probe = threading.Thread(target=lambda: answers.append(client.get("/healthz", **PROBE)), daemon=True)
            probe.start()
            probe.join(30)
            answered = list(answers)  # before the close below ends a probe that is still waiting
    finally:
        silent.close()  # a probe still waiting gets a reset and ends
        probe.join(10)
        connection.settings_dict["PORT"] = port
        connection.close()
    assert answered, "/healthz was still waiting for the database after 30 s"
    assert answered[0].status_code == 503 and answered[0].json() == {"database": "down", "broker": "ok"}
