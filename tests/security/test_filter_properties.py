"""Property tests: arbitrary query strings against every gallery and usage filter. A filter
a page cannot use is a 400 naming it, never a 500 (``/gallery/?to=9999-12-31`` was one:
the day after the last date there is overflowed)."""

import datetime as dt

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generations.gallery.queries import STATUS_FILTERS

GALLERY = reverse("generations:gallery")
GALLERY_PARAMS = ("by", "kind", "provider", "model", "status", "from", "to", "q", "fav", "archived", "after")
USAGE_PARAMS = ("period", "start", "end", "member", "provider", "model")
USAGE_PAGES = (reverse("accounts:team_usage"), reverse("accounts:team_usage_csv"))
LEDGER_PAGES = (reverse("accounts:my_usage"),)

dates = st.one_of(
    st.dates().map(dt.date.isoformat),  # 0001-01-01 .. 9999-12-31
    st.sampled_from(["9999-12-31", "9999-12-30", "0001-01-01", "0001-01-02", "2026-02-29", "2024-02-29",
                     "99999-01-01", "-2026-01-01", "2026-1-1", "20260101", "2026-W01-1", "2026-001"]),
)
text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "1", "0", "on", "me", "all", "everyone", "active", "day", "month",
                     "-1", "1e309", "9" * 400, "<script>", "' OR 1=1 --", "image", "video", "shark"]),
    st.sampled_from([value for value, _ in STATUS_FILTERS]),
)
value = st.one_of(dates, text)


def query(names):
    return st.dictionaries(st.sampled_from(names), value, max_size=len(names))


HYPOTHESIS = settings(max_examples=100, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def manager_client(owner_client, owner, teammate):
    return owner_client


@HYPOTHESIS
@given(params=query(GALLERY_PARAMS))
@example(params={"to": "9999-12-31"})
@example(params={"from": "9999-12-31"})
@example(params={"from": "0001-01-01", "to": "0001-01-01"})
def test_no_gallery_filter_is_a_server_error(owner_client, params):
    for headers in ({}, {"HX-Request": "true"}):
        response = owner_client.get(GALLERY, params, headers=headers)
        assert response.status_code in (200, 400), (params, response.status_code)


@HYPOTHESIS
@given(params=query(USAGE_PARAMS))
@example(params={"end": "9999-12-31"})
@example(params={"start": "9999-12-31", "end": "9999-12-31", "period": "month"})
@example(params={"start": "0001-01-01", "end": "0001-01-01"})
def test_no_usage_filter_is_a_server_error(manager_client, params):
    for url in USAGE_PAGES + LEDGER_PAGES:
        response = manager_client.get(url, {**params, "page": params.get("model", "")})
        assert response.status_code in (200, 400), (url, params, response.status_code)


@pytest.mark.parametrize(("url", "params", "says"), [
    (GALLERY, {"to": "9999-12-31"}, "<strong>To</strong>"),
    (GALLERY, {"from": "0001-01-01"}, "<strong>From</strong>"),
    (USAGE_PAGES[0], {"end": "9999-12-31"}, "between"),
    (USAGE_PAGES[1], {"end": "9999-12-31"}, "between"),
])
def test_a_date_at_the_end_of_the_calendar_is_a_clear_400(manager_client, url, params, says):
    response = manager_client.get(url, params)
    assert response.status_code == 400
    assert says in response.content.decode()
