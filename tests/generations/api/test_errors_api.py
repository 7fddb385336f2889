"""Every error of /api/v1/ is application/problem+json, over real HTTP against gunicorn."""

from __future__ import annotations

import pytest

from tests.generations.api.test_tokens_api import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_unknown_path_is_a_404_problem(call, token_for, owner, team):
    body = assert_problem(call("GET", "/generationz", token_for(owner, team)), 404)
    assert "/api/v1/docs" in body["detail"] and body["instance"] == "/api/v1/generationz"


def test_a_method_a_path_does_not_take_is_a_405_problem_with_allow(call, token_for, owner, team):
    answer = call("DELETE", "/me", token_for(owner, team))
    body = assert_problem(answer, 405)
    assert answer.headers["allow"] == "GET" and "DELETE" in body["detail"]


def test_an_unexpected_failure_is_a_500_problem_that_reveals_nothing(settings, rf, caplog):
    from generations.api.api import _server_error

    request = rf.get("/api/v1/me")
    response = _server_error(request, RuntimeError("secret detail sk-live-123"))
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert b"sk-live-123" not in response.content and b"server's log" in response.content
    assert "sk-live-123" in caplog.text  # the operator still sees it
