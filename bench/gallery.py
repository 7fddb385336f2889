"""2. Gallery at size: the gallery page (48 cards) with 1,000 and with 200,000 generations
in one team, on PostgreSQL.

Two teams are bulk-loaded with COPY (a prompt, a generation and a media row per
card; images and videos, mostly succeeded, some failed or archived, five
authors, a year of history). The page is asked for through Django's test
client in-process, signed in as a member, so the figure is the server's time
for the whole request (middleware, queries, template), without a network. The
first page and a deep page (the keyset cursor 95 % of the way down) are each
asked for N times after two warm-up requests, the 1,000 and the 200,000 team's
page alternately (a busy moment on this shared host then hits both alike); the
figure is the median. The tables are VACUUM ANALYZEd after loading, as
autovacuum would leave them, so it does not run during the measurement.
Queries are counted with CaptureQueriesContext for the full page, the htmx
page fragment and page sizes 12, 48 and 100.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import common
from bench.common import Row, log, median

WORDS = ("fox", "harbour", "neon", "forest", "glass", "desert", "storm", "violin", "orchid", "castle",
         "river", "robot", "lantern", "meadow", "comet", "bridge", "tiger", "snow", "market", "whale")


def _load(team, memberships, count: int, key) -> None:
    """COPY ``count`` prompts, generations and media rows into ``team``."""
    from django.db import connection

    rng = random.Random(count)
    now = datetime.now(UTC)
    authors = [m.user_id for m in memberships]
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM generations_prompt")
        prompt0 = cursor.fetchone()[0] + 1
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM generations_generation")
        gen0 = cursor.fetchone()[0] + 1
        raw = cursor.connection   # the psycopg connection
        created = [now - timedelta(seconds=365 * 86400 * (i / count)) - timedelta(microseconds=rng.randrange(10**6))
                   for i in range(count)]
        with raw.cursor() as cur:
            with cur.copy("COPY generations_prompt (id, public_id, text, negative_prompt, created, author_id, team_id)"
                          " FROM STDIN") as copy:
                for i in range(count):
                    text = " ".join(rng.choices(WORDS, k=8))
                    copy.write_row((prompt0 + i, uuid.uuid4(), text, "", created[i], authors[i % len(authors)],
                                    team.pk))
            columns = ("id, public_id, provider, model, kind, operation, params, status, provider_job_id, "
                       "provider_status, progress, error, needs_review, created, submitted_at, started_at, "
                       "finished_at, poll_count, error_count, output_urls, webhook_token, estimated_cost, "
                       "actual_cost, parent_relation, archived, author_id, team_id, prompt_id, provider_key_id")
            kinds = []
            with cur.copy(f"COPY generations_generation ({columns}) FROM STDIN") as copy:
                for i in range(count):
                    video = i % 3 == 0
                    kinds.append(video)
                    failed = i % 17 == 0
                    status = "failed" if failed else "succeeded"
                    c = created[i]
                    copy.write_row((
                        gen0 + i, uuid.uuid4(), "shark", "alibaba/wan-2.7" if video else "openai/gpt-image-2",
                        "video" if video else "image", "text-to-video" if video else "text-to-image",
                        '{"resolution": "480p", "duration": "5"}' if video else '{"size": "1024x1024"}',
                        status, f"job-{gen0 + i}", "failed" if failed else "completed", None if failed else 100,
                        "Shark AI reported the video as failed without a reason." if failed else "",
                        False, c, c, c + timedelta(seconds=2), c + timedelta(seconds=40), 10, 0, "[]", "",
                        1500 if video else 420, None if failed else (1500 if video else 420), "",
                        i % 50 == 7, authors[i % len(authors)], team.pk, prompt0 + i, key.pk))
            with cur.copy("COPY generations_media (public_id, position, file, kind, mime_type, bytes, sha256, width, "
                          "height, duration, thumbnail, created, generation_id) FROM STDIN") as copy:
                for i in range(count):
                    if i % 17 == 0:
                        continue
                    video = kinds[i]
                    base = f"media/{team.public_id}/{gen0 + i}/0"
                    copy.write_row((uuid.uuid4(), 0, base + (".mp4" if video else ".png"),
                                    "video" if video else "image", "video/mp4" if video else "image/png",
                                    900_000 if video else 1_400_000, "0" * 64, 854 if video else 1024,
                                    480 if video else 1024, 5.0 if video else None, base + ".thumb.webp",
                                    created[i] + timedelta(seconds=40), gen0 + i))
        for table in ("generations_prompt", "generations_generation", "generations_media"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")  # noqa: S608 (constant names)
            cursor.execute(f"VACUUM ANALYZE {table}")


def _deep_cursor(team, fraction: float = 0.95) -> str:
    from generations.gallery.queries import encode_cursor
    from generations.models import Generation

    visible = Generation.objects.filter(team=team, archived=False).order_by("-created", "-public_id")
    return encode_cursor(visible[int(visible.count() * fraction)])


def _timed(pages: list[tuple], repeats: int, **headers) -> list[float]:
    """Median seconds for each ``(client, url)``, asking for them in turn ``repeats`` times."""
    for client, url in pages:
        for _ in range(2):
            assert client.get(url, **headers).status_code == 200
    times: list[list[float]] = [[] for _ in pages]
    for _ in range(repeats):
        for i, (client, url) in enumerate(pages):
            started = time.perf_counter()
            response = client.get(url, **headers)
            times[i].append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
    return [median(t) for t in times]


def _queries(client, url: str, **headers) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(captured)


def _queries_at_size(client, url: str, size: int) -> int:
    """The page's query count with ``size`` cards a page (the view's page size, changed for this count)."""
    from generations.gallery import queries as gallery_queries

    defaults = gallery_queries.gallery_page.__defaults__
    gallery_queries.gallery_page.__defaults__ = (None, size)
    try:
        return _queries(client, url, HTTP_HX_REQUEST="true")
    finally:
        gallery_queries.gallery_page.__defaults__ = defaults


def _constant(*figures: dict) -> bool:
    """The same count at any size, position and gallery size (full pages and fragments apart)."""
    sizes = {n for f in figures for n in f["queries_by_size"].values()}
    full = {f[k] for f in figures for k in ("queries_first", "queries_deep")}
    fragments = {f["queries_fragment"] for f in figures}
    return len(sizes) == 1 and len(full) == 1 and fragments == sizes


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    from django.conf import settings
    from django.test import Client

    small, large = 1_000, (20_000 if quick else 200_000)
    repeats = 7 if quick else 15
    figures: dict = {"small": small, "large": large, "repeats": repeats}
    clients = {}
    for count in (small, large):
        team, memberships = common.make_team(f"gallery{count}", members=5)
        key = common.make_key(team, sandbox)
        started = time.monotonic()
        _load(team, memberships, count, key)
        log(f"gallery: loaded {count:,} generations in {time.monotonic() - started:.1f} s")
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = common.session_cookie(memberships[1].user)
        clients[count] = (client, team)

    url = "/gallery/"
    deep = {count: f"{url}?after={_deep_cursor(team)}" for count, (client, team) in clients.items()}
    first_ms = _timed([(clients[c][0], url) for c in (small, large)], repeats)
    deep_ms = _timed([(clients[c][0], deep[c]) for c in (small, large)], repeats)
    fragment_ms = _timed([(clients[c][0], deep[c]) for c in (small, large)], repeats, HTTP_HX_REQUEST="true")
    for i, count in enumerate((small, large)):
        client = clients[count][0]
        figures[count] = {
            "first_ms": 1000 * first_ms[i],
            "deep_ms": 1000 * deep_ms[i],
            "fragment_ms": 1000 * fragment_ms[i],
            "queries_first": _queries(client, url),
            "queries_deep": _queries(client, deep[count]),
            "queries_fragment": _queries(client, deep[count], HTTP_HX_REQUEST="true"),
            "queries_by_size": {size: _queries_at_size(client, deep[count], size) for size in (12, 48, 100)},
        }
        log(f"gallery: {count:,}: {figures[count]}")

    s, b = figures[small], figures[large]
    all_counts = [b[k] for k in ("queries_first", "queries_deep", "queries_fragment")] + \
        [s[k] for k in ("queries_first", "queries_deep", "queries_fragment")] + \
        list(s["queries_by_size"].values()) + list(b["queries_by_size"].values())
    rows = []
    for label, k in (("first page", "first_ms"), ("deep page (95 % down)", "deep_ms")):
        ratio = b[k] / s[k]
        rows.append(Row("gallery", f"{label}, {large:,} gens (median of {repeats})", f"{b[k]:.0f} ms",
                        f"{s[k]:.0f} ms with {small:,}", f"{ratio:.2f}x", "≤ 1.3x", ratio <= 1.3))
    rows.append(Row("gallery", "queries per page (full, htmx, 12/48/100 cards, top/deep)",
                    f"{min(all_counts)}-{max(all_counts)}", "—", "—", "constant, ≤ 8",
                    max(all_counts) <= 8 and _constant(s, b)))
    return rows, figures
