"""The OpenAPI document and the interactive docs, as gunicorn serves them.

The document at /api/v1/openapi.json must be valid OpenAPI 3.1, describe exactly the routes
the API serves (a route missing from it, or a path in it with no route, fails), and every
operation must declare its errors as problems. /api/v1/docs must render in a real browser
under Kiln's Content-Security-Policy with no console error.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-apigal17"))
PREFIX = "/api/v1/"
# ninja's own pages: the root, the schema and the docs; and the problem for any other path.
NOT_OPERATIONS = {"api-root", "openapi-json", "openapi-view", "no-such-path"}


@pytest.fixture
def schema(api_url) -> dict:
    answer = httpx.get(f"{api_url}/openapi.json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def served_routes() -> set[str]:
    """Every operation route under /api/v1/, from the URL resolver, as OpenAPI paths ({name})."""
    found: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and ("/" + route).startswith(PREFIX) and p.name not in NOT_OPERATIONS:
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).rstrip("/"))

    walk(get_resolver().url_patterns, "")
    return found


def test_the_document_has_no_repeated_key(api_url):
    # A repeated key is valid to Python's json but breaks Swagger UI's parser (a "200" beside a 200).
    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"repeated keys: {sorted(k for k in keys if keys.count(k) > 1)}"
        return dict(pairs)

    json.loads(httpx.get(f"{api_url}/openapi.json").text, object_pairs_hook=no_repeats)


def test_the_schema_is_valid_openapi_3_1(schema):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    assert schema["openapi"].startswith("3.1")
    validate(schema, cls=OpenAPIV31SpecValidator)
    assert schema["info"]["title"] == "Kiln API"
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"


def test_the_schema_s_paths_are_the_routes_the_api_serves(schema):
    documented = {path.rstrip("/") for path in schema["paths"]}
    served = served_routes()
    assert {"/api/v1/gallery", "/api/v1/shares", "/api/v1/shares/{share_id}", "/api/v1/balance",
            "/api/v1/usage"} <= served
    assert served - documented == set(), "routes missing from the schema"
    assert documented - served == set(), "schema paths with no route"


def test_every_operation_is_documented_with_its_errors_as_problems(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert "401" in operation["responses"], where
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], where
                    ref = response["content"]["application/problem+json"]["schema"]["$ref"]
                    assert ref.endswith("/Problem"), where


def test_the_schema_works_with_each_route_as_served(call, token_for, owner, team):
    # A documented path answers its documented method (here: with the caller's problems, not a 404 page).
    token = token_for(owner, team, scopes=("read",))
    for path in ("/gallery", "/shares", "/balance", "/usage"):
        assert call("GET", path, token).status_code == 200, path


def test_the_docs_page_renders_the_operations_and_tries_one_with_no_console_error(api_url, token_for, owner, team):
    token = token_for(owner, team, scopes=("read",))
    page_html = httpx.get(f"{api_url}/docs")
    assert page_html.status_code == 200 and page_html.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page_html.text
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"{api_url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=20_000)
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            assert {"/api/v1/gallery", "/api/v1/shares", "/api/v1/shares/{share_id}", "/api/v1/balance",
                    "/api/v1/usage"} <= {p.replace("\u200b", "").strip() for p in paths}
            assert page.locator(".info .title").inner_text().startswith("Kiln API")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "api-docs-1280.png"), full_page=True)
            # Authorize with a token, then try GET /balance from the page: the request goes out
            # from the docs under the same CSP (connect-src 'self').
            page.locator("button.authorize").click()
            page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(token)
            page.locator(".modal-ux .auth-btn-wrapper button.authorize").click()
            page.locator(".modal-ux button.close-modal").click()
            balance = page.locator("#operations-Account_and_models-generations_api_account_balance")
            balance.locator(".opblock-summary").click()
            balance.locator("button.try-out__btn").click()
            balance.locator("button.execute").click()
            answered = balance.locator(".live-responses-table tr.response td.response-col_status")
            answered.wait_for()
            assert answered.inner_text().strip() == "200"
            body = balance.locator(".live-responses-table tr.response .response-col_description pre").first.inner_text()
            assert '"credits": 1000000' in body
            page.screenshot(path=str(SHOTS / "api-docs-try-balance-1280.png"), full_page=False)
        finally:
            browser.close()
    assert problems == []
