"""Generations over the API, over real HTTP against gunicorn: create (JSON, gallery inputs,
multipart uploads), Idempotency-Key under concurrent repeats, the member's per-minute limit,
a job's state, cost, error and files, the actions, and who may do what."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from accounts.credits import services as credits
from accounts.credits.models import LedgerEntry
from accounts.models import Membership, Role
from generations.models import Favourite, Generation, InputMedia, Status
from tests.conftest import make_member
from tests.generations.api.test_tokens_api import assert_problem
from tests.generations.engine.conftest import IMAGE, VIDEO, assert_ledger_consistent, drive

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE_MODEL = f"shark:{IMAGE}"
VIDEO_MODEL = f"shark:{VIDEO}"


@pytest.fixture
def fast(sandbox):
    sandbox.control(duration=0.2)
    return sandbox


@pytest.fixture
def owner_token(token_for, owner, team, shark):
    return token_for(owner, team)


def image_request(prompt: str = "a kiln at dawn", **extra) -> dict:
    return {"model": IMAGE_MODEL, "operation": "text-to-image", "prompt": prompt, "params": {"n": 1}, **extra}


def png(size: int = 640, colour=(200, 90, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def ledger(public_id) -> list[str]:
    return sorted(LedgerEntry.objects.filter(generation_ref=public_id).values_list("kind", flat=True))


def wallet(user, team):
    return credits.wallet_for(Membership.objects.get(user=user, team=team))


def finished_image(make, prompt: str = "a kiln at dawn") -> Generation:
    generation = drive(make(prompt=prompt, model=IMAGE).pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    return generation


# -- create ---------------------------------------------------------------------


def test_a_json_create_answers_201_with_the_job_and_reserves_its_estimate_once(call, owner_token, owner, team, api_url):
    before = wallet(owner, team)
    answer = call("POST", "/generations", owner_token, json=image_request())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    generation = Generation.objects.get(public_id=body["id"])
    assert answer.headers["location"] == f"{api_url}/generations/{generation.public_id}" == body["url"]
    assert "idempotent-replayed" not in answer.headers
    assert (body["status"], body["model"], body["operation"], body["prompt"]) == (
        "queued", IMAGE_MODEL, "text-to-image", "a kiln at dawn")
    assert body["author"] == "owner@acme.test" and body["media"] == [] and body["params"]["n"] == 1
    assert body["cost"]["estimated"]["credits"] == generation.estimated_cost > 0
    assert body["cost"]["settlement"] == "held" and body["cost"]["charged"] is None
    after = wallet(owner, team)
    assert (after.available, after.reserved) == (before.available - generation.estimated_cost,
                                                 before.reserved + generation.estimated_cost)
    assert ledger(generation.public_id) == ["reserve"]
    assert_ledger_consistent()


def test_refusals_are_422_problems_naming_the_field_and_leave_nothing(call, owner_token, token_for, team, shark):
    cases = [
        ({**image_request(), "model": "shark:no-such-model"}, "model"),
        ({**image_request(), "model": "no colon"}, "model"),
        ({**image_request(), "operation": "text-to-video"}, "operation"),
        ({**image_request(), "params": {"n": 99}}, "params.n"),
        ({**image_request(), "prompt": "x" * 40_000}, "prompt"),
        ({**image_request(), "inputs": {"reference": [str(uuid.uuid4())]}}, "inputs.reference"),
        ({**image_request(), "parent": str(uuid.uuid4())}, "parent"),
        ({"prompt": "no model"}, "model"),
    ]
    for request, field in cases:
        body = assert_problem(call("POST", "/generations", owner_token, json=request), 422)
        assert body["field"] == field, (request, body)
    poor = make_member(team, "poor@acme.test", Role.MEMBER, credits=0)
    body = assert_problem(call("POST", "/generations", token_for(poor, team), json=image_request()), 422)
    assert body["type"].endswith("/insufficient-credits") and "credits" in body["detail"]
    assert_problem(call("POST", "/generations", owner_token, content=b"{not json",
                        headers={"Content-Type": "application/json"}), 400)
    assert_problem(call("POST", "/generations", owner_token, content=b"model=x",
                        headers={"Content-Type": "text/plain"}), 415)
    assert Generation.objects.count() == 0 and LedgerEntry.objects.filter(kind="reserve").count() == 0


@pytest.mark.media
def test_an_input_from_the_gallery_by_id_or_by_its_address(call, owner_token, make, fast, api_url):
    source = finished_image(make)
    media = source.media.get()
    site = api_url.removesuffix("/api/v1")
    for reference in (str(media.public_id), f"{site}/m/{media.public_id}/download/",
                      f"{site}/api/v1/media/{media.public_id}/download"):
        answer = call("POST", "/generations", owner_token, json={
            "model": VIDEO_MODEL, "operation": "image-to-video", "prompt": "the kiln breathes",
            "params": {"duration": "5"}, "inputs": {"first_frame": [reference]}})
        assert answer.status_code == 201, answer.text
        row = InputMedia.objects.get(generation__public_id=answer.json()["id"])
        assert (row.role, row.source_media_id, row.sha256) == ("first_frame", media.pk, media.sha256)


@pytest.mark.media
def test_another_teams_media_is_not_an_input_and_the_answer_does_not_tell_it_apart(
        call, token_for, make, fast, outsider, other_team, sandbox_key):
    theirs = finished_image(make).media.get()   # made in acme
    sandbox_key(other_team, "shark")
    body = assert_problem(call("POST", "/generations", token_for(outsider, other_team), json={
        "model": VIDEO_MODEL, "operation": "image-to-video", "prompt": "borrowed",
        "inputs": {"first_frame": str(theirs.public_id)}}), 422)
    assert body["field"] == "inputs.first_frame" and "not in your team's gallery" in body["detail"]
    assert not Generation.objects.filter(team=other_team).exists()


@pytest.mark.media
def test_a_multipart_upload_is_an_input(call, owner_token):
    image = png()
    answer = call("POST", "/generations", owner_token,
                  data={"payload": json.dumps({"model": VIDEO_MODEL, "operation": "image-to-video",
                                               "prompt": "the upload moves", "params": {"duration": "5"}})},
                  files={"first_frame": ("frame.png", image, "image/png")})
    assert answer.status_code == 201, answer.text
    row = InputMedia.objects.get(generation__public_id=answer.json()["id"])
    assert (row.role, row.mime_type, row.sha256, row.source_media_id) == (
        "first_frame", "image/png", hashlib.sha256(image).hexdigest(), None)

    # The same as plain form fields, params as JSON text.
    answer = call("POST", "/generations", owner_token,
                  data={"model": VIDEO_MODEL, "operation": "image-to-video", "prompt": "as form fields",
                        "params": json.dumps({"duration": "5"})},
                  files={"first_frame": ("frame.png", image, "image/png")})
    assert answer.status_code == 201, answer.text

    # Not an image: refused by its bytes, naming the input.
    body = assert_problem(call("POST", "/generations", owner_token,
                               data={"payload": json.dumps({"model": VIDEO_MODEL, "operation": "image-to-video",
                                                            "prompt": "html"})},
                               files={"first_frame": ("frame.png", b"<html>hi</html>", "image/png")}), 422)
    assert body["field"] == "inputs.first_frame"
    body = assert_problem(call("POST", "/generations", owner_token, data={"payload": json.dumps(image_request())},
                               files={"avatar": ("a.png", image, "image/png")}), 422)
    assert body["field"] == "inputs.avatar"
    assert Generation.objects.count() == 2


# -- Idempotency-Key --------------------------------------------------------------


def test_ten_concurrent_repeats_make_one_generation_and_one_reservation(call, owner_token, owner, team):
    before = wallet(owner, team).available
    key = str(uuid.uuid4())

    def send(_):
        return call("POST", "/generations", owner_token, json=image_request("ten at once"),
                    headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(send, range(10)))
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 9
    assert {a.headers["location"] for a in answers} == {answers[0].json()["url"]}
    generation = Generation.objects.get()
    assert ledger(generation.public_id) == ["reserve"]
    assert wallet(owner, team).available == before - generation.estimated_cost
    # Later, the same answer again.
    again = send(0)
    assert again.status_code == 201 and again.json()["id"] in ids and again.headers["idempotent-replayed"] == "true"
    assert Generation.objects.count() == 1
    assert_ledger_consistent()


def test_a_key_reused_for_another_request_is_refused_and_keys_are_namespaced(call, owner_token, owner, team):
    key = "release-42"
    assert call("POST", "/generations", owner_token, json=image_request("one"),
                headers={"Idempotency-Key": key}).status_code == 201
    body = assert_problem(call("POST", "/generations", owner_token, json=image_request("another"),
                               headers={"Idempotency-Key": key}), 422)
    assert body["field"] == "Idempotency-Key" and "different request" in body["detail"]
    body = assert_problem(call("POST", "/generations", owner_token, json=image_request(),
                               headers={"Idempotency-Key": "k" * 65}), 422)
    assert body["field"] == "Idempotency-Key" and "64" in body["detail"]
    stored = Generation.objects.get().idempotency_key
    assert stored.startswith("api:") and len(stored) == 64 and key not in stored
    # Another key, or none, is a new generation.
    assert call("POST", "/generations", owner_token, json=image_request("one"),
                headers={"Idempotency-Key": "release-43"}).status_code == 201
    assert call("POST", "/generations", owner_token, json=image_request("one")).status_code == 201
    assert Generation.objects.count() == 3


# -- the member's per-minute limit ------------------------------------------------


def test_the_members_generate_limit_counts_the_studio_and_the_api_alike(call, owner_token, make, token_for,
                                                                        teammate, team):
    from django.conf import settings

    limit = settings.KILN_GENERATE_PER_MINUTE   # the server's: the default, as make run has it
    first = call("POST", "/generations", owner_token, json=image_request(), headers={"Idempotency-Key": "first"})
    assert first.status_code == 201
    for _ in range(limit - 1):
        make(model=IMAGE)   # the studio's service: the same count
    refused = call("POST", "/generations", owner_token, json=image_request("one more"))
    body = assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert f"at most {limit} a minute" in body["detail"]
    assert Generation.objects.count() == limit
    # A repeat of an earlier request is its answer again, not a new generation.
    replay = call("POST", "/generations", owner_token, json=image_request(), headers={"Idempotency-Key": "first"})
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    # Another member has their own minute.
    assert call("POST", "/generations", token_for(teammate, team), json=image_request()).status_code == 201


# -- reading a job and its files ---------------------------------------------------


@pytest.mark.media
def test_a_finished_job_shows_its_state_cost_media_and_downloads_with_ranges(call, owner_token, owner, fast):
    created = call("POST", "/generations", owner_token, json=image_request("a bowl on a wheel"))
    generation = drive(Generation.objects.get(public_id=created.json()["id"]).pk)
    assert generation.status == Status.SUCCEEDED, generation.error

    body = call("GET", f"/generations/{generation.public_id}", owner_token).json()
    assert (body["status"], body["error"], body["needs_edit"]) == ("succeeded", None, False)
    assert body["cost"]["settlement"] == "captured"
    assert body["cost"]["charged"]["credits"] == generation.actual_cost
    assert body["timing"]["finished"] and body["timing"]["elapsed_seconds"] >= 0
    assert body["favourite"] is False and body["archived"] is False
    media = generation.media.get()
    [item] = body["media"]
    assert (item["id"], item["kind"], item["mime_type"], item["bytes"], item["width"]) == (
        str(media.public_id), "image", media.mime_type, media.bytes, media.width)

    data = media.file.read()
    whole = call("GET", item["download_url"].split("/api/v1", 1)[1], owner_token)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == media.mime_type
    assert whole.headers["content-disposition"].startswith("attachment;") and "a-bowl-on-a-wheel" in (
        whole.headers["content-disposition"])
    part = call("GET", f"/media/{media.public_id}/download", owner_token, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == data[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(data)}"
    tail = call("GET", f"/media/{media.public_id}/download", owner_token, headers={"Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == data[-7:]
    beyond = call("GET", f"/media/{media.public_id}/download", owner_token,
                  headers={"Range": f"bytes={len(data) + 5}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert beyond.headers["content-type"] == "application/problem+json" and beyond.json()["field"] == "Range"
    thumb = call("GET", item["thumbnail_url"].split("/api/v1", 1)[1], owner_token)
    assert thumb.status_code == 200 and thumb.content[:4] == b"RIFF"


def test_a_failed_job_shows_the_providers_words(call, owner_token, owner, team, fast):
    created = call("POST", "/generations", owner_token, json=image_request("a kiln [unsafe]"))
    generation = drive(Generation.objects.get(public_id=created.json()["id"]).pk)
    body = call("GET", f"/generations/{generation.public_id}", owner_token).json()
    assert body["status"] == "failed"
    assert body["error"] == "Content was blocked by the safety system."
    assert body["cost"]["settlement"] == "released" and body["media"] == []


# -- actions ----------------------------------------------------------------------


def test_cancel_retry_archive_and_favourite(call, owner_token, owner, team):
    before = wallet(owner, team).available
    job = call("POST", "/generations", owner_token, json=image_request("changed my mind")).json()
    cancelled = call("POST", f"/generations/{job['id']}/cancel", owner_token)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled"] is True and cancelled.json()["detail"] == "Cancelled."
    assert cancelled.json()["generation"]["status"] == "cancelled"
    assert wallet(owner, team).available == before
    again = call("POST", f"/generations/{job['id']}/cancel", owner_token).json()
    assert again["cancelled"] is True and "already ended" in again["detail"]

    retried = call("POST", f"/generations/{job['id']}/retry", owner_token)
    assert retried.status_code == 201, retried.text
    new = retried.json()
    assert retried.headers["location"] == new["url"]
    assert new["id"] != job["id"] and new["lineage"]["parent"] == job["id"] and new["lineage"]["relation"] == "retry"
    assert new["prompt"] == "changed my mind" and new["status"] == "queued"
    assert call("GET", f"/generations/{job['id']}", owner_token).json()["lineage"]["children"] == [new["id"]]
    body = assert_problem(call("POST", f"/generations/{new['id']}/retry", owner_token), 409)
    assert "failed, expired or cancelled" in body["detail"]

    archived = call("POST", f"/generations/{job['id']}/archive", owner_token)
    assert archived.status_code == 200 and archived.json()["archived"] is True
    assert Generation.objects.get(public_id=job["id"]).archived
    assert call("POST", f"/generations/{job['id']}/unarchive", owner_token).json()["archived"] is False

    for method, state in (("PUT", True), ("PUT", True), ("DELETE", False), ("DELETE", False)):
        answer = call(method, f"/generations/{job['id']}/favourite", owner_token)
        assert answer.status_code == 200 and answer.json()["favourite"] is state
        assert Favourite.objects.filter(user=owner, generation__public_id=job["id"]).exists() is state
    assert_ledger_consistent()


def test_a_job_refused_for_what_it_asked_is_not_retried_unchanged(call, owner_token, fast):
    job = call("POST", "/generations", owner_token, json={"model": VIDEO_MODEL, "prompt": "a fight [moderate]"}).json()
    drive(Generation.objects.get(public_id=job["id"]).pk)
    body = call("GET", f"/generations/{job['id']}", owner_token).json()
    assert (body["status"], body["error_kind"], body["needs_edit"]) == ("failed", "moderation", True)
    refused = assert_problem(call("POST", f"/generations/{job['id']}/retry", owner_token), 409)
    assert refused["type"].endswith("/needs-edit") and "Edit it" in refused["detail"]
    assert Generation.objects.count() == 1


# -- who may ----------------------------------------------------------------------


def endpoints(generation_id, media_id) -> list[tuple[str, str]]:
    g = f"/generations/{generation_id}"
    return [("GET", g), ("POST", f"{g}/cancel"), ("POST", f"{g}/retry"), ("POST", f"{g}/archive"),
            ("POST", f"{g}/unarchive"), ("PUT", f"{g}/favourite"), ("DELETE", f"{g}/favourite"),
            ("GET", f"/media/{media_id}/download"), ("GET", f"/media/{media_id}/thumbnail")]


def test_every_endpoint_answers_404_for_another_teams_objects(call, token_for, make, fast, outsider, other_team):
    generation = finished_image(make)
    Generation.objects.filter(pk=generation.pk).update(status=Status.FAILED)  # retry would be allowed
    media = generation.media.get()
    theirs = token_for(outsider, other_team)
    for method, path in endpoints(generation.public_id, media.public_id):
        body = assert_problem(call(method, path, theirs), 404)
        assert "acme" not in body["detail"].lower()
    for method, path in endpoints(uuid.uuid4(), uuid.uuid4()) + endpoints("not-a-uuid", "nope"):
        assert_problem(call(method, path, theirs), 404)
    generation.refresh_from_db()
    assert (generation.archived, generation.children.count(), Favourite.objects.count()) == (False, 0, 0)


def test_a_member_may_not_cancel_or_archive_anothers_job_but_may_favourite_and_retry_it(
        call, owner_token, token_for, teammate, team):
    job = call("POST", "/generations", owner_token, json=image_request("the owner's")).json()
    mate = token_for(teammate, team)
    for action in ("cancel", "archive", "unarchive"):
        body = assert_problem(call("POST", f"/generations/{job['id']}/{action}", mate), 403)
        assert "author or a team admin" in body["detail"]
    assert Generation.objects.get(public_id=job["id"]).status == Status.QUEUED
    assert call("PUT", f"/generations/{job['id']}/favourite", mate).json()["favourite"] is True
    assert call("GET", f"/generations/{job['id']}", owner_token).json()["favourite"] is False  # the member's own
    # An admin may do what the author may.
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    assert call("POST", f"/generations/{job['id']}/cancel", token_for(admin, team)).json()["cancelled"] is True
    assert call("POST", f"/generations/{job['id']}/archive", token_for(admin, team)).json()["archived"] is True
    retried = call("POST", f"/generations/{job['id']}/retry", mate)
    assert retried.status_code == 201 and retried.json()["author"] == "mate@acme.test"


def test_a_token_without_generate_may_read_but_not_write(call, token_for, owner, team, owner_token):
    job = call("POST", "/generations", owner_token, json=image_request()).json()
    reader = token_for(owner, team, scopes=("read",))
    assert call("GET", f"/generations/{job['id']}", reader).status_code == 200
    writes = [(m, p) for m, p in endpoints(job["id"], uuid.uuid4()) if not p.startswith("/media") and m != "GET"]
    for method, path in [("POST", "/generations"), *writes]:
        body = assert_problem(call(method, path, reader, json=image_request()), 403)
        assert "“generate”" in body["detail"]
    writer = token_for(owner, team, scopes=("generate",))
    body = assert_problem(call("GET", f"/generations/{job['id']}", writer), 403)
    assert "“read”" in body["detail"]
    assert Generation.objects.count() == 1 and Generation.objects.get().status == Status.QUEUED


def test_a_broken_multipart_body_is_a_400_problem_not_a_server_error(call, owner_token, kiln_web):
    body = b'--XYZ\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{}'   # no boundary, no end
    answer = call("POST", "/generations", owner_token, content=body,
                  headers={"Content-Type": "multipart/form-data; boundary="})
    problem = assert_problem(answer, 400)
    assert problem["type"].endswith("malformed-body")
    assert Generation.objects.count() == 0
    assert "API error" not in kiln_web.log()   # not logged as a server failure


def test_only_a_finished_result_s_files_are_inputs_as_in_the_studio_s_picker(call, owner_token, owner, team):
    from tests.generations.gallery.conftest import add_media, make_generation

    failed = make_generation(team, owner, status=Status.FAILED)
    media = add_media(failed)
    answer = call("POST", "/generations", owner_token, json={
        "model": VIDEO_MODEL, "operation": "image-to-video", "prompt": "the kiln breathes",
        "params": {"duration": "5"}, "inputs": {"first_frame": [str(media.public_id)]}})
    problem = assert_problem(answer, 422)
    assert problem["field"] == "inputs.first_frame" and "gallery" in problem["detail"]
    assert Generation.objects.filter(team=team).count() == 1   # the failed one only
