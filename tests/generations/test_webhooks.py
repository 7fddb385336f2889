"""Provider callbacks (``generations:webhook``): a nudge to poll now, never the result."""

import secrets
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from generations.models import Generation, Prompt, Status


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_generation(team, owner):
    def make(status=Status.RUNNING, provider="sealink", token=None):
        prompt = Prompt.objects.create(team=team, author=owner, text="A serene lake at sunset")
        return Generation.objects.create(
            team=team, author=owner, prompt=prompt, provider=provider, model="wan2.6-t2v", kind="video",
            operation="text-to-video", status=status, provider_job_id="task_abc",
            webhook_token=secrets.token_urlsafe(32) if token is None else token,
            next_poll_at=timezone.now() + timedelta(hours=1) if status in (Status.SUBMITTED, Status.RUNNING) else None)
    return make


def hook_url(generation, provider=None):
    return reverse("generations:webhook", args=[provider or generation.provider, generation.webhook_token])


def test_a_callback_makes_the_generation_due_now_and_queues_one_poll(client, make_generation,
                                                                      django_capture_on_commit_callbacks):
    generation = make_generation()
    before = timezone.now()
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(hook_url(generation), data={"id": "task_abc", "status": "completed"},
                               content_type="application/json")
    assert response.status_code == 204
    generation.refresh_from_db()
    assert generation.next_poll_at <= timezone.now()
    assert generation.next_poll_at >= before
    assert generation.status == Status.RUNNING
    assert len(queued) == 1


def test_the_payload_is_never_taken_as_the_result(client, make_generation, django_capture_on_commit_callbacks):
    generation = make_generation()
    with django_capture_on_commit_callbacks():
        client.post(hook_url(generation), content_type="application/json",
                    data={"status": "completed", "data": {"video_url": "https://evil.example/x.mp4"}})
    generation.refresh_from_db()
    assert (generation.status, generation.output_urls, generation.error) == (Status.RUNNING, [], "")


def test_an_unknown_token_is_a_404(client, make_generation):
    make_generation()
    assert client.post(reverse("generations:webhook", args=["sealink", secrets.token_urlsafe(32)])).status_code == 404
    assert client.post(reverse("generations:webhook", args=["sealink", "short"])).status_code == 404


def test_a_token_under_another_provider_is_a_404(client, make_generation):
    generation = make_generation()
    assert client.post(hook_url(generation, provider="shark")).status_code == 404
    assert client.post(hook_url(generation, provider="nowhere")).status_code == 404


def test_a_generation_without_a_token_cannot_be_reached(client, make_generation):
    make_generation(token="")
    assert client.post("/hooks/sealink//").status_code == 404


def test_a_duplicate_callback_within_two_seconds_changes_nothing(client, make_generation,
                                                                 django_capture_on_commit_callbacks):
    generation = make_generation()
    with django_capture_on_commit_callbacks() as first:
        client.post(hook_url(generation))
    later = timezone.now() + timedelta(minutes=5)
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=later)
    with django_capture_on_commit_callbacks() as second:
        response = client.post(hook_url(generation))
    assert response.status_code == 204
    assert (len(first), len(second)) == (1, 0)
    generation.refresh_from_db()
    assert generation.next_poll_at == later


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED,
                                    Status.DOWNLOADING])
def test_a_generation_not_in_flight_is_left_alone(client, make_generation, django_capture_on_commit_callbacks,
                                                  status):
    generation = make_generation(status=status)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(hook_url(generation))
    assert response.status_code == 204
    assert queued == []
    generation.refresh_from_db()
    assert (generation.status, generation.next_poll_at) == (status, None)


def test_only_post_is_accepted(client, make_generation):
    generation = make_generation()
    assert client.get(hook_url(generation)).status_code == 405


def test_providers_need_neither_a_login_nor_a_csrf_token(csrf_client, make_generation,
                                                         django_capture_on_commit_callbacks):
    # The caller is the provider's server, not a browser: the unguessable token is the credential.
    generation = make_generation()
    with django_capture_on_commit_callbacks():
        assert csrf_client.post(hook_url(generation)).status_code == 204


def test_one_client_address_is_limited(client, make_generation, settings):
    settings.KILN_WEBHOOK_IP_LIMIT = 3
    generation = make_generation()
    answers = [client.post(hook_url(generation)).status_code for _ in range(4)]
    assert answers == [204, 204, 204, 429]
    limited = client.post(hook_url(generation))
    assert limited["Retry-After"] == "60"
    other = client.post(hook_url(generation), REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 204


# -- end to end: Sealink's sandbox, the engine, a forged callback ----------------


@pytest.fixture
def eager_celery():
    from tests.brokers import celery_conf

    with celery_conf(task_always_eager=True):
        yield


def test_a_callback_polls_sealink_and_sealink_decides(client, owner, team, sandbox, sandbox_key, settings,
                                                      eager_celery, django_capture_on_commit_callbacks):
    from accounts.models import Membership
    from generations.engine.submit import submit
    from generations.services import create_generation

    settings.KILN_PUBLIC_URL = "https://kiln.example"
    sandbox_key(team, "sealink")
    membership = Membership.objects.get(user=owner, team=team)
    with django_capture_on_commit_callbacks():
        generation = create_generation(membership=membership, provider_id="sealink", model_id="wan2.6-t2v",
                                       operation="text-to-video", prompt="A serene lake at sunset")
    submit(generation.pk)
    generation.refresh_from_db()
    assert len(generation.webhook_token) >= 40
    sent = sandbox.job(generation.provider_job_id)
    assert sent["params"]["webhook_url"] == f"https://kiln.example/hooks/sealink/{generation.webhook_token}/"

    sandbox.job(generation.provider_job_id, state="running")
    polls_before = sandbox.job(generation.provider_job_id)["polls"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(hook_url(generation), data={"status": "completed"},
                               content_type="application/json")
    assert response.status_code == 204
    generation.refresh_from_db()
    assert sandbox.job(generation.provider_job_id)["polls"] == polls_before + 1
    assert generation.status == Status.RUNNING          # the forged "completed" changed nothing
    assert generation.provider_status.startswith("running")

