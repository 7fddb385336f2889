"""Kiln's own error pages (templates/404.html, 403.html, 403_csrf.html, 500.html); in the browser:
tests/e2e/test_error_pages_e2e.py."""

from django.views.csrf import csrf_failure
from django.views.defaults import server_error


def test_the_500_page_needs_no_database_no_request_and_no_script(rf):
    """Django renders 500.html with an empty context: no request, no context processors (they
    could be what failed). No ``db`` fixture here: a query would raise."""
    response = server_error(rf.get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert 'class="brand"' in body and "kiln/kiln.css" in body and "<h1>" in body
    assert "<script" not in body  # no nonce to give it: the CSP would refuse it


def test_the_csrf_failure_page_is_kiln_s(rf):
    response = csrf_failure(rf.post("/accounts/login/"), reason="CSRF token missing.")
    body = response.content.decode()
    assert response.status_code == 403
    assert 'class="brand"' in body and "<script" not in body
