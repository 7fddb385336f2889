"""The product's URLs plus ``/bench/trivial/``: the cheapest signed-in page, to compare against.

It goes through the same middleware (sessions, CSRF, auth, CSP, htmx, current
team, axes) and the same ``login_required`` as the real views, and then does
nothing, so the difference measured is the work of the view under test.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns


@login_required
def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial, name="bench_trivial"), *project_urlpatterns]
