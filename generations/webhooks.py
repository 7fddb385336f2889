"""What providers reach on Kiln: callbacks and input files.

Callbacks: ``POST /hooks/<provider>/<token>/`` (``generations:webhook``).

Sealink calls the ``webhook_url`` of a task when it finishes. The URL carries
the generation's unguessable ``webhook_token`` (``secrets.token_urlsafe(32)``,
set by ``services.create_generation`` when KILN_PUBLIC_URL is https). A
callback is only a nudge: it makes the generation due now and enqueues a
poll (on commit), and the poll asks the provider what really happened. The
body is never read, so a forged or replayed callback can at most cause one
extra poll; an unknown token is a 404, and a generation that is not in
flight is left alone.

Limits (Django's cache, per process with the default local-memory cache, shared
with Redis): one wake-up per generation per ``WAKE_INTERVAL`` seconds
(extra callbacks in that window answer 204 and do nothing), and at most
``IP_LIMIT`` callbacks per client address per minute (then 429 with
``Retry-After``; the setting ``KILN_WEBHOOK_IP_LIMIT`` overrides it).

Input files: ``GET /inputs/<signed token>/`` (``generations:input_file``) serves
a generation's input (a first frame, a reference image, a source video) to a
provider that fetches inputs by URL. The token is signed (``engine.submit.input_token``)
and expires after ``engine.submit.INPUT_URL_MAX_AGE``; it names one InputMedia of one
generation, and only while that generation has not ended.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generations.engine.submit import input_from_token
from generations.models import IN_FLIGHT, TERMINAL, Generation
from generations.providers.registry import PROVIDERS
from generations.serving import serve_file
from project import ratelimit

WAKE_INTERVAL = 2          # seconds between two wake-ups of one generation
IP_LIMIT = 120             # callbacks per client address per minute (KILN_WEBHOOK_IP_LIMIT)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _over_ip_limit(request: HttpRequest) -> bool:
    limit = getattr(settings, "KILN_WEBHOOK_IP_LIMIT", IP_LIMIT)
    return not ratelimit.hit("webhook-ip", ratelimit.client_address(request), limit=limit, window=60).allowed


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str, token: str) -> HttpResponse:
    if _over_ip_limit(request):
        return HttpResponse(status=429, headers={"Retry-After": "60"})
    if provider not in PROVIDERS or not _TOKEN.match(token):
        raise Http404("Unknown callback.")
    found = (Generation.objects.filter(provider=provider, webhook_token=token)
             .values_list("pk", "status").first())
    if found is None:
        raise Http404("Unknown callback.")
    pk, status = found
    if status in IN_FLIGHT and cache.add(f"kiln:webhook:wake:{pk}", 1, timeout=WAKE_INTERVAL):
        woken = Generation.objects.filter(pk=pk, status__in=IN_FLIGHT).update(next_poll_at=timezone.now())
        if woken:
            from generations.tasks import poll_generation

            transaction.on_commit(lambda: poll_generation.delay(pk))
    return HttpResponse(status=204)


def input_file(request: HttpRequest, token: str) -> HttpResponse:
    item = input_from_token(token)
    if item is None or item.generation.status in TERMINAL:
        raise Http404("No such input.")
    response = serve_file(request, item.file, item.mime_type, private=False)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


urlpatterns = [
    path("hooks/<str:provider>/<str:token>/", webhook, name="webhook"),
    path("inputs/<str:token>/", input_file, name="input_file"),
]
