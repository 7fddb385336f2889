"""The sandbox core over real HTTP: jobs follow the clock, media is real and signed,
faults happen exactly as queued, and the control API tells the truth."""

import io
import re
import time

import av
import httpx
import pytest
from PIL import Image

from generations.sandbox.server import Phase, ProviderApp, Request, json_response


def _register_echo(app: ProviderApp) -> None:
    """A minimal provider, so the core is tested on its own."""

    def envelope(status, message, code=None):
        return json_response({"problem": {"text": message, "kind": code}}, status)

    app.error_envelope = envelope

    @app.route("POST", "/jobs")
    def create(req: Request):
        body = req.get_json(force=True, silent=True) or {}
        job = app.jobs.create(app.id, body.get("kind", "image"), body, prompt=body.get("prompt", ""),
                              idempotency_key=req.headers.get("Idempotency-Key"),
                              fail="echo failed" if "[fail]" in body.get("prompt", "") else None)
        return json_response({"id": job.id}, 202)

    @app.route("GET", "/jobs/<id>")
    def show(req: Request):
        job = app.jobs.poll(app.id, req.params["id"])
        if job is None:
            return app.error_envelope(404, "no such job", "not_found")
        data = {"id": job.id, "phase": job.raw_status or job.phase().value, "progress": job.progress()}
        if job.phase() == Phase.SUCCEEDED:
            data["url"] = req.media_url(job.kind, width=64, height=48, text=job.prompt,
                                        fmt=job.params.get("fmt", ""))
        if job.phase() == Phase.FAILED:
            data["error"] = job.error
        return json_response(data)


@pytest.fixture
def echo(sandbox):
    if "echo" not in sandbox.sandbox.apps:
        sandbox.sandbox.mount("echo", _register_echo)
    client = httpx.Client(base_url=sandbox.base_url("echo"), headers={"Authorization": "Bearer sk-test"},
                          timeout=10)
    yield client
    client.close()


def _wait_for(client, job_id, phase, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = client.get(f"/jobs/{job_id}").json()
        if data["phase"] == phase:
            return data
        time.sleep(0.05)
    raise AssertionError(f"job never reached {phase}: {data}")


def test_a_job_goes_from_queued_through_running_to_succeeded_with_the_clock(sandbox, echo):
    sandbox.control(duration=0.6)
    job_id = echo.post("/jobs", json={"prompt": "a fox"}).json()["id"]
    assert echo.get(f"/jobs/{job_id}").json()["phase"] == "queued"
    running = _wait_for(echo, job_id, "running")
    assert 0 < running["progress"] < 100
    done = _wait_for(echo, job_id, "succeeded")
    assert done["progress"] == 100 and done["url"].startswith(sandbox.url + "/media/")


def test_the_fail_keyword_fails_the_job_when_its_time_is_up(sandbox, echo):
    sandbox.control(duration=0.2)
    job_id = echo.post("/jobs", json={"prompt": "[fail] a fox"}).json()["id"]
    assert _wait_for(echo, job_id, "failed")["error"] == "echo failed"


def test_the_slow_keyword_makes_a_job_five_times_longer(sandbox, echo):
    sandbox.control(duration=0.3)
    echo.post("/jobs", json={"prompt": "[slow] a fox"})
    job = sandbox.jobs()["jobs"][0]
    assert job["duration"] == pytest.approx(1.5)


def test_a_duration_range_gives_each_job_its_own_random_duration_within_it(sandbox, echo):
    sandbox.control(duration_range=[2.0, 3.0])
    for _ in range(20):
        echo.post("/jobs", json={"prompt": "a fox"})
    durations = [job["duration"] for job in sandbox.jobs()["jobs"]]
    assert all(2.0 <= d <= 3.0 for d in durations) and len(set(durations)) > 1
    sandbox.control(duration_range=None)
    echo.post("/jobs", json={"prompt": "a hare"})
    assert sandbox.jobs()["jobs"][-1]["duration"] == pytest.approx(1.0)


def test_a_latency_range_holds_every_provider_request_at_least_its_low_end(sandbox, echo):
    """Load tests give the sandbox a real provider's latency, so polling waits on the network."""
    sandbox.control(latency_range=[0.3, 0.3])
    started = time.monotonic()
    job_id = echo.post("/jobs", json={"prompt": "a fox"}).json()["id"]
    echo.get(f"/jobs/{job_id}")
    assert time.monotonic() - started >= 0.6
    sandbox.control(latency_range=None)
    assert sandbox.jobs()["jobs"][0]["polls"] == 1


def test_missing_invalid_and_broke_keys_are_refused_in_the_providers_envelope(sandbox, echo):
    url = sandbox.base_url("echo") + "/jobs"
    assert httpx.post(url, json={}).status_code == 401
    invalid = httpx.post(url, json={}, headers={"Authorization": "Bearer invalid"})
    broke = httpx.post(url, json={}, headers={"Authorization": "Bearer broke"})
    assert invalid.status_code == 401 and invalid.json()["problem"]["kind"] == "auth"
    assert broke.status_code == 402 and broke.json()["problem"]["kind"] == "credits"
    assert sandbox.jobs()["jobs"] == []


def test_media_urls_serve_real_png_jpeg_webp_and_mp4(sandbox, echo):
    sandbox.control(duration=0)
    for fmt, pil_format in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")):
        job_id = echo.post("/jobs", json={"prompt": "an otter", "fmt": fmt}).json()["id"]
        response = httpx.get(echo.get(f"/jobs/{job_id}").json()["url"])
        assert response.status_code == 200 and response.headers["content-type"] == f"image/{fmt}"
        image = Image.open(io.BytesIO(response.content))
        assert (image.format, image.size) == (pil_format, (64, 48))

    job_id = echo.post("/jobs", json={"prompt": "a wave", "kind": "video"}).json()["id"]
    response = httpx.get(echo.get(f"/jobs/{job_id}").json()["url"])
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 64, 48)
    assert len(frames) == 24
    assert frames[0].to_image().tobytes() != frames[-1].to_image().tobytes()


def test_a_tampered_or_expired_media_url_answers_403(sandbox, echo):
    sandbox.control(duration=0, media_ttl=0)
    job_id = echo.post("/jobs", json={"prompt": "an otter"}).json()["id"]
    url = echo.get(f"/jobs/{job_id}").json()["url"]
    assert httpx.get(url.replace("sig=", "sig=x")).status_code == 403
    time.sleep(1.05)
    assert httpx.get(url).status_code == 403


def test_the_big_file_streams_an_mp4_header_and_exactly_n_bytes_without_content_length(sandbox):
    url = sandbox.big_url(3_000_000)
    with httpx.stream("GET", url) as response:
        data = b"".join(response.iter_raw())
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
    assert len(data) == 3_000_000 and data[4:8] == b"ftyp"
    assert httpx.get(url.replace("bytes=3000000", "bytes=9")).status_code == 403


def test_a_status_fault_answers_in_the_providers_envelope_with_its_headers_and_runs_nothing(sandbox, echo):
    sandbox.fault("^/echo/jobs$", status=429, headers={"Retry-After": "7"}, count=2)
    for _ in range(2):
        response = echo.post("/jobs", json={"prompt": "x"})
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
        assert response.json()["problem"]["kind"] == "rate_limit"
    assert echo.post("/jobs", json={"prompt": "x"}).status_code == 202
    assert len(sandbox.jobs()["jobs"]) == 1


def test_a_truncated_answer_still_ran_the_request_so_a_retry_shows_as_a_duplicate(sandbox, echo):
    sandbox.fault("^/echo/jobs$", truncate=True)
    cut = echo.post("/jobs", json={"prompt": "once only"})
    with pytest.raises(ValueError):
        cut.json()
    echo.post("/jobs", json={"prompt": "once only"})
    assert sandbox.jobs()["duplicates"] == [{"provider": "echo", "key": "once only", "count": 2}]


def test_idempotency_keys_count_submissions_instead_of_prompts(sandbox, echo):
    echo.post("/jobs", json={"prompt": "same"}, headers={"Idempotency-Key": "a"})
    echo.post("/jobs", json={"prompt": "same"}, headers={"Idempotency-Key": "b"})
    assert sandbox.jobs()["duplicates"] == []


def test_truncate_close_reset_and_reset_after_break_the_connection(sandbox, echo):
    sandbox.fault("^/echo/jobs$", truncate="close")
    with pytest.raises(httpx.RemoteProtocolError):
        echo.post("/jobs", json={"prompt": "x"})
    sandbox.fault("^/echo/jobs$", reset=True)
    with pytest.raises(httpx.ReadError):
        echo.post("/jobs", json={"prompt": "y"})
    sandbox.control(duration=0)
    job_id = echo.post("/jobs", json={"prompt": "z"}).json()["id"]
    url = echo.get(f"/jobs/{job_id}").json()["url"]
    sandbox.fault("^/media/", reset_after=50)
    with pytest.raises(httpx.ReadError):
        httpx.get(url)
    assert httpx.get(url).status_code == 200   # the fault was used up


def test_a_non_json_body_and_a_delay_are_served_as_asked(sandbox, echo):
    sandbox.fault("^/echo/jobs$", status=502, body="<html>Bad gateway</html>")
    response = echo.post("/jobs", json={})
    assert response.status_code == 502 and response.text == "<html>Bad gateway</html>"
    sandbox.fault("^/echo/jobs$", delay=0.3)
    started = time.monotonic()
    assert echo.post("/jobs", json={}).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_trickle_sends_the_whole_body_slowly_then_pads_it(sandbox, echo):
    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    sandbox.fault(f"^/echo/jobs/{job_id}$", trickle=0.5, trickle_interval=0.02)
    started = time.monotonic()
    response = echo.get(f"/jobs/{job_id}")
    assert time.monotonic() - started >= 0.5
    assert response.json()["id"] == job_id


def test_huge_streams_far_more_than_asked_for(sandbox, echo):
    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    sandbox.fault(f"^/echo/jobs/{job_id}$", huge=4_000_000)
    with echo.stream("GET", f"/jobs/{job_id}") as response:
        assert sum(len(chunk) for chunk in response.iter_raw()) == 4_000_000


def test_jobs_can_be_forced_to_fail_cancel_hold_or_vanish(sandbox, echo):
    sandbox.control(duration=0.2)
    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    sandbox.job(job_id, state="running")
    time.sleep(0.3)
    assert echo.get(f"/jobs/{job_id}").json()["phase"] == "running"
    sandbox.job(job_id, state="failed", error="GPU on fire")
    assert echo.get(f"/jobs/{job_id}").json()["error"] == "GPU on fire"
    sandbox.job(job_id, raw_status="mystery")
    assert echo.get(f"/jobs/{job_id}").json()["phase"] == "mystery"
    sandbox.job(job_id, state="vanished")
    assert echo.get(f"/jobs/{job_id}").status_code == 404


def test_the_jobs_listing_records_when_each_job_completed_and_was_first_seen_done(sandbox, echo):
    sandbox.control(duration=0.1)
    before = time.time()
    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    time.sleep(0.15)
    echo.get(f"/jobs/{job_id}")
    (job,) = sandbox.jobs()["jobs"]
    assert job["phase"] == "succeeded" and job["polls"] == 1 and job["submits"] == 1
    assert before <= job["completed_at"] <= job["first_seen_terminal_at"] <= time.time()


def test_reset_forgets_jobs_faults_and_settings(sandbox, echo):
    sandbox.control(duration=42, media_ttl=5)
    sandbox.fault("^/echo/", status=500)
    sandbox.reset()
    assert echo.post("/jobs", json={"prompt": "x"}).status_code == 202
    assert sandbox.control()["duration"] == 1.0 and sandbox.control()["media_ttl"] == 600.0
    assert len(sandbox.jobs()["jobs"]) == 1


def test_with_a_poll_latency_two_polls_of_one_job_at_once_show_as_overlapping_intervals(sandbox, echo):
    """What the several-hosts rehearsal measures: each logged request says when it arrived and
    when its answer was ready, and a slow status route makes simultaneous polls overlap."""
    import concurrent.futures

    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    sandbox.control(poll_latency=1.0)
    echo.get(f"/jobs/{job_id}")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert all(r.status_code == 200 for r in pool.map(echo.get, [f"/jobs/{job_id}"] * 2))
    polls = [r for r in sandbox.requests() if r["path"] == f"/echo/jobs/{job_id}"]
    assert len(polls) == 3 and all(r["time"] - r["started"] >= 1.0 for r in polls)
    alone, *together = polls
    assert alone["time"] <= min(r["started"] for r in together)
    assert max(r["started"] for r in together) < min(r["time"] for r in together)


def test_the_request_log_keeps_as_many_requests_as_its_setting_says(sandbox, echo):
    sandbox.control(request_log=3)
    for n in range(5):
        echo.get(f"/jobs/nope-{n}")
    assert [r["path"] for r in sandbox.requests()] == [f"/echo/jobs/nope-{n}" for n in (2, 3, 4)]
    sandbox.reset()
    assert sandbox.control()["request_log"] == 5000


def test_bad_control_input_is_a_400_not_a_crash(sandbox):
    assert httpx.post(sandbox.url + "/_control/settings", json={"duration": "soon"}).status_code == 400
    assert httpx.post(sandbox.url + "/_control/settings", json={"request_log": 0}).status_code == 400
    assert httpx.post(sandbox.url + "/_control/faults", json={"status": 500}).status_code == 400
    assert httpx.post(sandbox.url + "/_control/faults", json={"path": "(["}).status_code == 400


def test_many_requests_in_a_row_are_answered_quickly_each_on_a_connection_of_its_own(sandbox, echo):
    started = time.monotonic()
    for _ in range(100):
        response = echo.get("/jobs/nope")
        assert response.status_code == 404 and response.headers["Connection"] == "close"
    assert time.monotonic() - started < 3


def test_answers_held_open_by_slow_clients_never_hold_up_the_next_request(sandbox, echo):
    """The server keeps its threads for later connections, and starts another when all are busy:
    ten trickling answers in flight, a poll is still answered at once."""
    import concurrent.futures

    job_id = echo.post("/jobs", json={"prompt": "x"}).json()["id"]
    sandbox.fault(f"^/echo/jobs/{job_id}$", trickle=2.0, trickle_interval=0.05, count=10)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        slow = [pool.submit(echo.get, f"/jobs/{job_id}") for _ in range(10)]
        time.sleep(0.5)   # all ten are being trickled now (the fault list is spent)
        assert httpx.get(sandbox.url + "/_control/faults").json()["faults"] == []
        started = time.monotonic()
        assert echo.get(f"/jobs/{job_id}").json()["id"] == job_id
        assert time.monotonic() - started < 1.0
        assert all(f.result().json()["id"] == job_id for f in slow)


def test_answers_carry_the_standard_reason_phrases_kiln_shows_to_users(sandbox, echo):
    sandbox.fault("^/echo/jobs$", status=502, body="<html>Bad gateway</html>")
    assert echo.post("/jobs", json={}).reason_phrase == "Bad Gateway"
    assert echo.get("/jobs/nope").reason_phrase == "Not Found"


def test_unknown_providers_and_routes_answer_404(sandbox, echo):
    assert httpx.get(sandbox.url + "/nobody/x").status_code == 404
    assert echo.get("/nothing-here").json()["problem"]["kind"] == "not_found"


def test_the_server_starts_on_a_free_port_and_stops():
    from generations.sandbox.server import SandboxServer

    server = SandboxServer("127.0.0.1", 0, providers=[])
    url = server.start()
    assert httpx.get(url + "/").json()["sandbox"] == "kiln"
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=2)

    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=2)


def test_a_stopped_server_leaves_no_thread_behind():
    import threading

    from generations.sandbox.server import SandboxServer

    def request_threads():
        return [t for t in threading.enumerate() if t.name == "kiln-sandbox-request"]

    before = len(request_threads())
    server = SandboxServer("127.0.0.1", 0, providers=[])
    url = server.start()
    with httpx.Client() as client:
        for _ in range(20):
            assert client.get(url + "/").status_code == 200
    assert 1 <= len(request_threads()) - before <= 3   # one connection at a time: threads are reused
    server.stop()
    deadline = time.monotonic() + 5
    while len(request_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(request_threads()) == before


def test_python_dash_m_serves_every_provider_that_exists_until_stopped():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "generations.sandbox", "--port", "0", "--duration", "0.5"],
                               stdout=subprocess.PIPE, text=True)
    try:
        base = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group(0)
        answer = httpx.get(base + "/", timeout=5).json()
        assert "shark" in answer["providers"]
        assert httpx.get(base + "/_control/settings", timeout=5).json()["duration"] == 0.5
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.django_db
def test_sandbox_key_gives_a_team_an_active_key_pointing_at_the_sandbox(sandbox, sandbox_key, team, settings):
    from generations.keys.models import ProviderKey

    key = sandbox_key(team)
    other = sandbox_key(team, "shuttleai", api_key="broke")
    assert ProviderKey.objects.filter(team=team, is_active=True).count() == 2
    assert key.base_url == sandbox.base_url("shark") and key.get_api_key().startswith("sk-test-")
    assert other.get_api_key() == "broke" and other.base_url.endswith("/shuttleai")
    assert settings.KILN_ALLOW_PRIVATE_URLS is True
