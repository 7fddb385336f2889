"""Output URLs and output media are never trusted.

SSRF: ``http.download`` fetches only http(s) URLs of public addresses, checked
after DNS resolution and again on every redirect; the sandbox on loopback is
reachable only through the explicit setting (or one named host). A provider's
key goes only to the provider's own host, never across a redirect. Provider API calls
get the same guard (a team's admin sets a key's base URL): a private address is refused
when the key is saved and when a connection is opened, unless the operator lists it.
Media: the type comes from magic bytes, the name from the server, and serving
sends the exact type with ``nosniff`` and a CSP that forbids anything active.
"""

import io
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from generations.models import Generation, Status
from generations.providers import http
from generations.providers.base import Credentials, ProviderError
from generations.providers.registry import get_provider
from generations.serving import MEDIA_CSP
from tests.generations.engine.conftest import IMAGE, drive

PRIVATE_URLS = [
    "http://localhost/",
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x.png",
    "http://2130706433/",                        # 127.0.0.1 written as a number
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_loopback_and_link_local_addresses_are_refused(settings, url):
    settings.KILN_ALLOW_PRIVATE_URLS = False
    with pytest.raises(http.DownloadError, match="private address"):
        http.check_url_allowed(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://example.com/",
                                 "data:image/png;base64,AAAA", "javascript:alert(1)", "//example.com/a.png",
                                 "http:///nohost"])
def test_only_http_and_https_urls_with_a_host_are_fetched(settings, url):
    settings.KILN_ALLOW_PRIVATE_URLS = True  # even with the sandbox switch on
    with pytest.raises(http.DownloadError, match="Refusing"):
        http.check_url_allowed(url)


def test_a_public_address_passes_the_check(settings):
    settings.KILN_ALLOW_PRIVATE_URLS = False
    http.check_url_allowed("https://93.184.216.34/result.png")  # numeric: no DNS needed


def test_the_sandbox_on_loopback_is_refused_unless_the_setting_allows_it(sandbox, settings):
    url = sandbox.big_url(1000)
    settings.KILN_ALLOW_PRIVATE_URLS = False
    with pytest.raises(http.DownloadError, match="private address"):
        http.download(url, io.BytesIO(), max_bytes=10_000)
    assert not [r for r in sandbox.requests() if r["path"].startswith("/media/")]  # no request went out
    settings.KILN_ALLOW_PRIVATE_URLS = True
    assert http.download(url, io.BytesIO(), max_bytes=10_000).bytes == 1000


def test_a_host_that_rebinds_to_loopback_after_the_check_is_not_connected_to(sandbox, settings, monkeypatch):
    """DNS rebinding: the name answers a public address when it is checked and loopback
    when the connection is made. The connection goes only to checked addresses, so the
    second answer is checked too and refused; nothing reaches the service on loopback."""
    import socket

    settings.KILN_ALLOW_PRIVATE_URLS = False
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # the first lookup; every later one says loopback
    lookups = []

    def resolver(host, port, *args, **kwargs):
        if host != "media.rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return real(next(answers, "127.0.0.1"), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)  # the resolver: what leaves the machine
    url = sandbox.big_url(1000).replace("127.0.0.1", "media.rebind.test")
    with pytest.raises(http.DownloadError, match=r"media\.rebind\.test: it resolves to a private address"):
        http.download(url, io.BytesIO(), max_bytes=10_000)
    assert len(lookups) == 2  # checked before the request, checked again when connecting
    assert not [r for r in sandbox.requests() if r["path"].startswith("/media/")]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/iam/", "http://10.1.2.3/x.png",
                                    "http://localhost:{port}/media/x.png", "http://127.0.0.1:1/", "file:///etc/passwd"])
def test_every_redirect_hop_is_checked_again(sandbox, settings, target):
    """The first hop is allowed (the sandbox's host:port only); the redirect it answers is not."""
    settings.KILN_ALLOW_PRIVATE_URLS = False
    url = sandbox.big_url(1000)
    netloc = urlsplit(url).netloc
    target = target.format(port=urlsplit(url).port)
    sandbox.fault(r"^/media/", status=302, headers={"Location": target})
    with pytest.raises(http.DownloadError, match="Refusing"):
        http.download(url, io.BytesIO(), max_bytes=10_000, allow_hosts={netloc})
    assert len([r for r in sandbox.requests() if r["path"].startswith("/media/")]) == 1


def test_a_provider_key_is_not_forwarded_across_a_redirect_to_another_host(sandbox, settings):
    url = sandbox.big_url(1000)
    other_host = url.replace("127.0.0.1", "localhost")  # the same server under another name: another host
    sandbox.fault(r"^/media/", status=302, headers={"Location": other_host}, count=1)
    got = http.download(url, io.BytesIO(), max_bytes=10_000,
                        headers={"Authorization": "Bearer sk-live-SECRET", "X-Api-Key": "sk-live-SECRET"})
    assert got.bytes == 1000 and got.final_url == other_host
    media_requests = [r for r in sandbox.requests() if r["path"].startswith("/media/")]
    assert [r["auth"] for r in media_requests] == [True, False]


def test_shuttleai_sends_its_key_to_its_own_content_endpoint_only():
    provider = get_provider("shuttleai")
    creds = Credentials(api_key="sk-live-SECRET", base_url="https://api.shuttleai.com")
    own = provider.download_headers("https://api.shuttleai.com/v1/videos/abc/content", creds)
    assert own == {"Authorization": "Bearer sk-live-SECRET"}
    for cdn in ("https://cdn.shuttleai.com/abc.mp4", "http://api.shuttleai.com/v1/videos/abc/content",
                "https://api.shuttleai.com.evil.test/v1/videos/abc/content", "https://api.shuttleai.com:8443/x"):
        assert provider.download_headers(cdn, creds) == {}
    for provider_id in ("shark", "sealink", "gateway"):
        assert get_provider(provider_id).download_headers("https://cdn.example.com/a.mp4", creds) == {}


# -- output media ------------------------------------------------------------------


@pytest.fixture
def image_job(owner, team, sandbox, sandbox_key):
    from generations.services import create_generation

    sandbox_key(team, "shark")
    membership = owner.memberships.get(team=team)
    return create_generation(membership=membership, provider_id="shark", model_id=IMAGE, operation="text-to-image",
                             prompt="a pot", params={"quality": "low", "size": "1024x1024"})


def test_html_sent_as_image_png_is_refused_by_its_magic_bytes(image_job, sandbox):
    drive(image_job.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", status=200, body="<!doctype html><script>steal()</script>",
                  headers={"Content-Type": "image/png"}, count=5)
    generation = drive(image_job.pk)
    assert generation.status == Status.FAILED
    assert "HTML" in generation.error
    assert generation.media.count() == 0


@pytest.mark.media
def test_media_is_stored_under_a_server_chosen_name_whatever_the_url_says(image_job, sandbox):
    drive(image_job.pk, until={Status.DOWNLOADING})
    generation = Generation.objects.select_related("team").get(pk=image_job.pk)
    evil = [{**o, "url": o["url"] + "&filename=../../../evil.html"} for o in generation.output_urls]
    Generation.objects.filter(pk=generation.pk).update(output_urls=evil)
    generation = drive(generation.pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    media = generation.media.get()
    assert re.fullmatch(rf"media/{generation.team.public_id}/{generation.public_id}/0\.png", media.file.name)
    assert media.mime_type == "image/png"


@pytest.mark.media
def test_media_is_served_with_its_exact_type_nosniff_and_a_restrictive_csp(image_job, sandbox, owner_client):
    generation = drive(image_job.pk)
    media = generation.media.get()
    for name, disposition in (("generations:media", "inline"), ("generations:download", "attachment"),
                              ("generations:thumbnail", "inline")):
        response = owner_client.get(reverse(name, args=[media.public_id]))
        assert response.status_code == 200, name
        assert response["Content-Type"] == ("image/webp" if name.endswith("thumbnail") else "image/png")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == MEDIA_CSP
        assert "script-src" not in MEDIA_CSP and "default-src 'none'" in MEDIA_CSP and "sandbox" in MEDIA_CSP
        assert response["Content-Disposition"].startswith(disposition)


# ---------------------------------------------------------------------------
# Provider API calls: a key's base URL is set by a team's admin, so it gets the same guard


def _sandbox_api_calls(sandbox):
    return [r for r in sandbox.requests() if not r["path"].startswith(("/media/", "/_control"))]


def _guard_on(settings):
    """The address settings are fixed for a process's life; connections are checked when they
    are opened, so start from an empty pool as a process started with these settings would."""
    settings.KILN_ALLOW_PRIVATE_URLS = False
    http.reset_client()


def test_a_key_pointing_at_a_private_address_sends_nothing_there(image_job, sandbox, settings):
    """The key was saved while the sandbox switch was on (as a team's admin could, naming any
    host that resolves privately); with the guard on, the submit connects nowhere and fails
    in words, and the credits come back."""
    _guard_on(settings)
    before = len(_sandbox_api_calls(sandbox))
    generation = drive(image_job.pk)
    assert generation.status == Status.FAILED
    assert "Refusing to connect to 127.0.0.1: it resolves to a private address." in generation.error
    assert "KILN_ALLOWED_PRIVATE_HOSTS" in generation.error
    assert len(_sandbox_api_calls(sandbox)) == before  # nothing reached it
    wallet = generation.author.memberships.get(team=generation.team).wallet
    assert wallet.reserved == 0  # released


def test_the_operator_can_allow_one_private_host_for_a_gateway_on_their_network(image_job, sandbox, settings):
    _guard_on(settings)
    settings.KILN_ALLOWED_PRIVATE_HOSTS = [urlsplit(sandbox.url).netloc]
    generation = drive(image_job.pk)
    assert generation.status == Status.SUCCEEDED, generation.error  # the API calls and the download


def test_a_provider_host_name_that_resolves_to_loopback_is_not_connected_to(sandbox, settings, monkeypatch):
    import socket

    _guard_on(settings)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host == "gateway.internal.test" else host, *a, **k))  # the resolver: leaves the machine
    url = sandbox.url.replace("127.0.0.1", "gateway.internal.test") + "/shark/api/v1/models"
    with pytest.raises(ProviderError, match=r"gateway\.internal\.test: it resolves to a private address") as refused:
        http.request("GET", url, credentials=Credentials(api_key="sk-test-0000", base_url=url))
    assert not refused.value.retryable
    assert not _sandbox_api_calls(sandbox)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://169.254.169.254/latest", "http://10.0.0.5:3000/v1",
                                      "http://localhost:9000", "http://[::1]:8000", "http://api.localhost"])
def test_a_team_admin_cannot_save_a_key_naming_a_private_address(owner_client, team, settings, base_url):
    from generations.keys.models import ProviderKey

    settings.KILN_ALLOW_PRIVATE_URLS = False
    response = owner_client.post("/accounts/team/keys/add/", {"provider": "gateway", "label": "LAN",
                                                              "api_key": "sk-lan-0123456789", "base_url": base_url})
    assert response.status_code == 400
    assert "is a private address. Kiln calls only public addresses unless the operator lists" in \
        response.content.decode().replace("&#x27;", "'")
    assert not ProviderKey.objects.filter(team=team).exists()

    settings.KILN_ALLOWED_PRIVATE_HOSTS = [f"{urlsplit(base_url).hostname}:{urlsplit(base_url).port or 80}"]
    response = owner_client.post("/accounts/team/keys/add/", {"provider": "gateway", "label": "LAN",
                                                              "api_key": "sk-lan-0123456789", "base_url": base_url})
    assert response.status_code == 302
    assert ProviderKey.objects.get(team=team).base_url == base_url


# ---------------------------------------------------------------------------
# Every address that is not globally routable is refused, not only "private" ones

# What ``not ip.is_global`` (plus the IPv4 inside an IPv6 form) refuses that the old
# "private, loopback, link-local, multicast, reserved, unspecified" test let through:
NEWLY_REFUSED = [
    "100.64.0.1",          # shared address space (RFC 6598): CGNAT, Tailscale peers
    "100.100.100.200",     # ... Alibaba Cloud's metadata service lives here
    "100.127.255.254",     # ... up to the end of 100.64.0.0/10
    "192.0.0.8",           # IETF protocol assignments, 192.0.0.0/24 (the IPv4 dummy address)
    "2002:a00:1::",        # 6to4 wrapping 10.0.0.1
    "2002:7f00:1::",       # 6to4 wrapping 127.0.0.1
    "fec0::1",             # deprecated IPv6 site-local
    "3fff::1",             # IPv6 documentation (RFC 9637)
]
# Still refused, as before: the IPv4-mapped and NAT64 forms of a non-public address.
STILL_REFUSED = ["::ffff:100.100.100.200", "::ffff:10.0.0.1", "64:ff9b::a00:1", "198.18.0.1", "192.0.2.1",
                 "2001:db8::1", "fc00::1", "240.0.0.1", "255.255.255.255", "ff0e::1"]
# Public, and so allowed: the IPv4-mapped and NAT64 forms of a public address are judged
# by that address (an IPv6-only host with DNS64 reaches an IPv4-only provider that way).
PUBLIC = ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]


def _url(address: str, path: str = "/") -> str:
    return f"http://{'[' + address + ']' if ':' in address else address}{path}"


@pytest.mark.parametrize("address", NEWLY_REFUSED + STILL_REFUSED)
def test_every_address_that_is_not_globally_routable_is_refused(settings, address):
    settings.KILN_ALLOW_PRIVATE_URLS = False
    with pytest.raises(http.DownloadError, match="private address"):
        http.check_url_allowed(_url(address))  # connect time (after DNS)
    with pytest.raises(http.DownloadError, match="is a private address"):
        http.check_base_url(_url(address))     # save time (a key's base URL)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_in_every_form_pass(settings, address):
    settings.KILN_ALLOW_PRIVATE_URLS = False
    http.check_url_allowed(_url(address))
    http.check_base_url(_url(address))


METADATA = "http://100.100.100.200/latest/meta-data/"


def test_the_alibaba_metadata_address_cannot_be_saved_as_a_base_url_anywhere(owner_client, team, settings,
                                                                             monkeypatch):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from generations.keys.models import ProviderKey

    settings.KILN_ALLOW_PRIVATE_URLS = False
    form = {"provider": "gateway", "label": "Meta", "api_key": "sk-lan-0123456789", "base_url": METADATA}
    response = owner_client.post("/accounts/team/keys/add/", form)        # the team page
    assert response.status_code == 400 and "100.100.100.200 is a private address" in response.content.decode()

    monkeypatch.setenv("KILN_API_KEY", "sk-lan-0123456789")                 # the CLI
    with pytest.raises(CommandError, match=r"100\.100\.100\.200 is a private address"):
        call_command("providerkeys", "add", "--team", "acme", "--provider", "gateway", "--label", "Meta",
                     "--base-url", METADATA, stdout=io.StringIO(), stderr=io.StringIO())

    root = get_user_model().objects.create_superuser("root@kiln.test", "pw-not-used-here-123")
    owner_client.force_login(root)                                           # the admin
    response = owner_client.post("/admin/generations/providerkey/add/", {
        "team": team.pk, "provider": "gateway", "label": "Meta", "new_api_key": "sk-lan-0123456789",
        "base_url": METADATA, "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 200 and "100.100.100.200 is a private address" in response.content.decode()
    assert not ProviderKey.objects.filter(team=team).exists()


def test_a_call_to_the_metadata_address_connects_nowhere_and_carries_nothing_it_said(sandbox, settings, monkeypatch):
    """The network is the one thing replaced: 100.100.100.200 is routed to the sandbox on
    loopback, standing in for a metadata service that answers a 404 page listing secrets.
    With the guard on, nothing is sent there and the error says only that it was refused."""
    import socket

    _guard_on(settings)
    port = urlsplit(sandbox.url).port
    real = socket.create_connection

    def network(address, *args, **kwargs):
        host, target_port = address
        return real(("127.0.0.1", target_port) if host == "100.100.100.200" else address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", network)
    sandbox.fault(r"^/latest/", status=404, body="AccessKeyId=LTAI-internal-secret",
                  headers={"Content-Type": "text/plain"})
    with pytest.raises(ProviderError) as refused:
        http.request("GET", f"http://100.100.100.200:{port}/latest/meta-data/",
                     credentials=Credentials(api_key="sk-test-0000", base_url=f"http://100.100.100.200:{port}"))
    assert "Refusing to connect to 100.100.100.200: it resolves to a private address." in refused.value.message
    assert "LTAI" not in refused.value.message and not refused.value.retryable
    assert not [r for r in sandbox.requests() if r["path"].startswith("/latest/")]


def test_a_non_json_error_page_is_not_copied_into_the_error(sandbox, settings):
    """An allowed host's HTML error page (a proxy's) gives its status, not its markup; a long
    plain-text body is cut short and kept on one line."""
    url = sandbox.url + "/shark/api/v1/models"
    sandbox.fault(r"^/shark/api/v1/models", status=502, count=1, headers={"Content-Type": "text/html"},
                  body="<html><body><h1>502</h1><p>upstream 10.0.3.7:8080 (internal-api) refused</p></body></html>")
    with pytest.raises(ProviderError) as html_error:
        http.request("GET", url)
    assert html_error.value.message == "HTTP 502 Bad Gateway"
    sandbox.fault(r"^/shark/api/v1/models", status=500, count=1, headers={"Content-Type": "text/plain"},
                  body="Traceback (most recent call last):\n" + "  frame\n" * 2000)
    with pytest.raises(ProviderError) as text_error:
        http.request("GET", url)
    message = text_error.value.message
    assert message.startswith("HTTP 500 Internal Server Error: Traceback (most recent call last): frame frame")
    assert len(message) <= http.MAX_ERROR_CHARS and "\n" not in message
