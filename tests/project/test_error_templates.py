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


def test_the_error_pages_do_not_need_the_static_manifest(rf, settings, tmp_path):
    """A deployment whose static manifest lacks an entry must still show its 500 and 404, not fail
    inside them (found by test_logformat's web server: "Missing staticfiles manifest entry")."""
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.views.defaults import page_not_found

    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    staticfiles_storage._wrapped = None  # the storage follows the settings above
    try:
        assert server_error(rf.get("/")).status_code == 500
        assert b"kiln/kiln.css" in page_not_found(rf.get("/nope/"), Exception("nope")).content
    finally:
        staticfiles_storage._wrapped = None
