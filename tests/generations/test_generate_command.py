"""manage.py generate: the studio's rules from the command line; bad input exits 2."""

import pytest
from django.core.management import CommandError, call_command

from generations.models import Generation, Status
from generations.sandbox import media as sample
from tests.generations.engine.conftest import VIDEO, drive


def run(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("generate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


BASE = ("--team", "acme", "--user", "owner@acme.test")


def test_good_input_creates_the_generation_like_the_studio(shark, owner):
    out, _ = run(*BASE, "--model", f"shark:{VIDEO}", "--prompt", "a kiln at dawn", "--param", "duration=10")
    generation = Generation.objects.get()
    assert (generation.status, generation.params["duration"], generation.author) == (Status.QUEUED, 10, owner)
    assert str(generation.public_id) in out and "estimate" in out


def test_a_model_id_alone_is_enough_when_one_provider_serves_it(shark, owner):
    run(*BASE, "--model", VIDEO, "--prompt", "x")
    assert Generation.objects.get().provider == "shark"


def test_an_input_file_picks_the_operation_that_takes_it(shark, owner, tmp_path):
    frame = tmp_path / "frame.png"
    frame.write_bytes(sample.image_bytes(320, 240, "frame"))
    run(*BASE, "--model", VIDEO, "--prompt", "move", "--input", f"first_frame={frame}")
    generation = Generation.objects.get()
    assert generation.operation == "image-to-video"
    assert generation.inputs.get().role == "first_frame"


@pytest.mark.parametrize(("args", "message"), [
    (("--param", "duration=7"), "duration: Choose one of"),
    (("--param", "resolution"), "write KEY=VALUE"),
    (("--prompt", "bell\x07"), "control characters"),
])
def test_bad_input_exits_2_with_the_same_message_as_the_studio(shark, owner, args, message):
    argv = [*BASE, "--model", VIDEO]
    if "--prompt" not in args:
        argv += ["--prompt", "x"]
    with pytest.raises(CommandError) as caught:
        run(*argv, *args)
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert Generation.objects.count() == 0


def test_an_html_file_given_as_an_image_exits_2(shark, owner, tmp_path):
    fake = tmp_path / "frame.png"
    fake.write_text("<!doctype html><p>not an image")
    with pytest.raises(CommandError) as caught:
        run(*BASE, "--model", VIDEO, "--prompt", "x", "--input", f"first_frame={fake}")
    assert caught.value.returncode == 2
    assert "first_frame: “frame.png” is an HTML/XML document" in str(caught.value)
    assert Generation.objects.count() == 0


def test_an_unknown_model_lists_what_the_team_can_use(shark, owner):
    with pytest.raises(CommandError) as caught:
        run(*BASE, "--model", "nope/nothing", "--prompt", "x")
    assert caught.value.returncode == 2
    assert f"shark:{VIDEO}" in str(caught.value)


def test_a_stranger_is_refused(shark, outsider):
    with pytest.raises(CommandError) as caught:
        run("--team", "acme", "--user", "outsider@rivals.test", "--model", VIDEO, "--prompt", "x")
    assert caught.value.returncode == 2
    assert "not a member" in str(caught.value)


def test_wait_without_a_worker_gives_up_after_the_timeout(shark, owner):
    with pytest.raises(CommandError) as caught:
        run(*BASE, "--model", VIDEO, "--prompt", "x", "--wait", "--timeout", "0.5")
    assert caught.value.returncode == 1
    assert "is a Celery worker running?" in str(caught.value)


def _wait_while(action, *args):
    """Run ``generate --wait`` while another thread plays the worker: ``action(pk)`` on the
    job the command creates. Returns (stdout, the CommandError or None)."""
    import threading
    import time
    from io import StringIO

    from django.db import connection

    def worker():
        try:
            stop = time.monotonic() + 20
            while time.monotonic() < stop and not Generation.objects.exists():
                time.sleep(0.05)
            action(Generation.objects.get().pk)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    out, error = StringIO(), None
    try:
        call_command("generate", *BASE, "--model", VIDEO, *args, "--wait", "--timeout", "40", stdout=out)
    except CommandError as exc:
        error = exc
    thread.join()
    return out.getvalue(), error


def _cancel(pk):
    from generations.services import cancel_generation

    generation = Generation.objects.get(pk=pk)
    assert cancel_generation(generation, actor=generation.author) == "Cancelled."


@pytest.mark.parametrize(("prompt", "action", "status"), [
    ("[fail] a kiln at dawn", lambda pk: drive(pk), "failed"),
    ("a kiln at dawn", _cancel, "cancelled"),
])
def test_wait_prints_that_a_failed_or_cancelled_job_cost_nothing_and_was_refunded(
        transactional_db, shark, owner, sandbox, prompt, action, status):
    sandbox.control(duration=0.3)
    out, error = _wait_while(action, "--prompt", prompt, "--param", "duration=5")
    generation = Generation.objects.get()
    assert generation.status == status
    assert error is not None and error.returncode == 1
    final = [line for line in out.splitlines() if line.startswith(status)]
    assert final == [f"{status} · cost 0 credits · {generation.estimated_cost:,} reserved, refunded"], out
    assert "4,000 credits" not in out.replace("estimate 4,000 credits", "")


def test_wait_prints_what_a_succeeded_job_was_charged(transactional_db, shark, owner, sandbox):
    sandbox.control(duration=0.3)
    out, error = _wait_while(lambda pk: drive(pk), "--prompt", "a kiln at dawn", "--param", "duration=5")
    generation = Generation.objects.get()
    assert error is None and generation.status == "succeeded"
    assert f"succeeded · cost {generation.actual_cost:,} credits" in out.splitlines()
