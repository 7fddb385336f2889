"""The one way Kiln speaks HTTP to providers and their CDNs (httpx).

- ``request()``: a call to a provider API. Transport failures, 408, 429 and
  5xx become retryable ``ProviderError``s (honouring ``Retry-After``); other
  4xx become permanent ones carrying the provider's own message. A key's base
  URL is set by a team's admin, so these connections get the same address
  guard as downloads (below).
  Nothing is retried here: a POST that may have reached the provider is
  never sent twice; the engine decides when to try again.
- ``post_webhook()``: a team's signed webhook to its endpoint: the same address guard,
  an overall deadline, no redirects followed, and at most a few KiB of the answer read.
- ``download()``: streams an output URL into a file at constant memory, with
  a size cap, an overall deadline (a server trickling bytes cannot hold a
  worker forever), and an SSRF guard that refuses every address that is not globally
  routable (private, loopback, link-local, shared 100.64.0.0/10, ...): every hop (redirects included) connects only to the
  addresses its one DNS lookup returned and the check passed.

The guard is off with ``KILN_ALLOW_PRIVATE_URLS`` (the local sandbox) and lifted for
the "host:port" pairs in ``KILN_ALLOWED_PRIVATE_HOSTS`` (a gateway on the operator's
own network).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from django.conf import settings

from generations.providers.base import NOT_SENT, Credentials, ProviderError
from generations.providers.redaction import redact

USER_AGENT = "Kiln/0.1 (+self-hosted)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """One pooled client per process, shared by its threads (poll threads, a ``--pool threads``
    download worker: httpx.Client is thread-safe); created lazily in each prefork child."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
                _client = httpx.Client(
                    timeout=DEFAULT_TIMEOUT,
                    limits=limits,
                    transport=_CheckedTransport(limits=limits),
                    headers={"User-Agent": USER_AGENT},
                    follow_redirects=False,
                )
    return _client


def reset_client() -> None:
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


ErrorParser = Callable[[httpx.Response, Any], str]

# ``NOT_SENT`` (imported from base, where ``key_problem`` reads it; ``http.NOT_SENT`` to the
# engine): the ``ProviderError.code`` when the request provably never reached the provider
# (connection refused, connect timeout): only then may a submit be re-sent.


# A provider's error goes into a generation's error, which every member of the team sees:
# its words, not a page of whatever the server sent.
MAX_ERROR_CHARS = 300


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def default_error_message(response: httpx.Response, body: Any) -> str:
    """The provider's words from the usual envelopes: {"error": {"message"}}, {"error": "..."}, {"message"};
    else a short plain-text body. An HTML page (a proxy's, a load balancer's, or any host that
    is not an API) is not copied: only its status is."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return short(error["message"])
        if isinstance(error, str) and error:
            return short(error)
        for key in ("message", "detail", "msg", "fail_reason"):
            if isinstance(body.get(key), str) and body[key]:
                return short(body[key])
        if isinstance(body.get("code"), str) and body["code"]:
            return short(body["code"])
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    text = response.text.strip() if response.content else ""
    content_type = response.headers.get("Content-Type", "").lower()
    if not text or "html" in content_type or "xml" in content_type or text.startswith("<"):
        return status
    return short(f"{status}: {text}")


def error_code(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type") or error.get("code") or "")
        if isinstance(body.get("code"), str):
            return body["code"]
    return ""


def retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def parse_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def request(method: str, url: str, *, credentials: Credentials | None = None, json_body: Any = None,
            timeout: float | httpx.Timeout | None = None, headers: dict[str, str] | None = None,
            error_message: ErrorParser = default_error_message, ok: tuple[int, ...] = ()) -> httpx.Response:
    """Send one request; return the response for 2xx (and any status in ``ok``), else raise ProviderError."""
    all_headers = {"Accept": "application/json"}
    if credentials is not None:
        all_headers["Authorization"] = f"Bearer {credentials.api_key}"
    all_headers.update(headers or {})
    token = _address_policy.set(_policy(None, ()))
    try:
        response = client().request(method, url, json=json_body, headers=all_headers,
                                    timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)
    except DownloadError as exc:  # the address guard refused the connection, or no DNS: nothing was sent
        raise ProviderError(exc.message, retryable=exc.retryable, code=NOT_SENT) from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # Nothing was sent: the engine may safely send this request again.
        raise ProviderError(f"Could not reach the provider: {type(exc).__name__}.", retryable=True,
                            code=NOT_SENT) from None
    except httpx.TimeoutException:
        raise ProviderError(f"The provider did not answer in time ({method} {_path(url)}).", retryable=True) from None
    except httpx.TransportError as exc:
        raise ProviderError(f"Could not reach the provider: {type(exc).__name__}.", retryable=True) from None
    finally:
        _address_policy.reset(token)
    if response.is_success or response.status_code in ok:
        return response
    body = parse_json(response)
    # Redacted here before it is cut short (a key cut in half would no longer match); the
    # adapter boundary redacts whatever an adapter raises again (base.Provider).
    message = short(redact(error_message(response, body), credentials.api_key if credentials else ""))
    status = response.status_code
    retryable = status in (408, 409, 423, 425, 429) or status >= 500
    if status == 409:
        retryable = False
    raise ProviderError(message, retryable=retryable, retry_after=retry_after_seconds(response),
                        status_code=status, code=error_code(body))


@dataclass
class WebhookAnswer:
    status_code: int
    text: str              # the start of the body, for the delivery log (short)


def post_webhook(url: str, body: bytes, headers: dict[str, str], *, deadline_seconds: float = 15.0,
                 max_bytes: int = 4096) -> WebhookAnswer:
    """POST ``body`` to a team's webhook endpoint; the answer's status and the start of its body.

    The address guard applies as to provider calls (checked before sending and at connect time).
    Redirects are not followed (a 3xx is an answer, not a 2xx). At most ``max_bytes`` of the
    body are read. The deadline is the whole request's, connecting (each address) and every read
    included (``_deadline``): a receiver trickling its headers cannot hold the worker past it.
    Once the status line and headers are in, they are the answer, however slowly the body comes.
    (The name's DNS lookup is the resolver's; it is not cut.)
    Raises DownloadError when nothing usable came back."""
    deadline = time.monotonic() + deadline_seconds
    policy = _policy(None, ())
    check_url_allowed(url, allow_private=policy.allow_private, allow_hosts=policy.allow_hosts)
    token = _address_policy.set(policy)
    ends = _deadline.set(deadline)
    try:
        with client().stream("POST", url, content=body, headers=headers,
                             timeout=httpx.Timeout(min(10.0, deadline_seconds), connect=5.0)) as response:
            head = b""
            try:
                for chunk in response.iter_raw():
                    head += chunk[: max_bytes - len(head)]
                    if len(head) >= max_bytes:
                        break
            except httpx.TimeoutException:
                pass  # the status came in time: that is the answer (a 2xx acknowledges), however slow the body
            return WebhookAnswer(response.status_code, short(head.decode("utf-8", "replace"), 200))
    except httpx.TimeoutException:
        raise DownloadError("The endpoint did not answer in time.", retryable=True) from None
    except httpx.TransportError as exc:
        raise DownloadError(f"Could not reach the endpoint: {type(exc).__name__}.", retryable=True) from None
    finally:
        _deadline.reset(ends)
        _address_policy.reset(token)


def json_of(response: httpx.Response) -> dict:
    """The body as a JSON object; a truncated or non-JSON body is a retryable error."""
    body = parse_json(response)
    if not isinstance(body, dict):
        snippet = response.text[:120] if response.content else "an empty body"
        raise ProviderError(f"The provider sent a response that is not a JSON object: {snippet!r}", retryable=True,
                            status_code=response.status_code)
    return body


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


# ---------------------------------------------------------------------------
# Downloads


class DownloadError(Exception):
    def __init__(self, message: str, *, retryable: bool = False, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code


@dataclass
class Downloaded:
    bytes: int
    sha256: str
    head: bytes           # the first bytes, for the magic-number check
    content_type: str
    final_url: str


def check_url_allowed(url: str, *, allow_private: bool | None = None, allow_hosts: Collection[str] = ()) -> None:
    """Refuse anything but http(s) to a public address (after DNS resolution).

    ``allow_hosts``: "host:port" pairs exempt from the private-address check
    (one known service on loopback, say) while every other URL is still checked.
    ``download()`` runs it before each hop and again when it opens a connection
    (``_CheckedBackend``), which connects only to the addresses that lookup checked."""
    host, port = _check_shape(url)
    _checked_addresses(host, port, _policy(allow_private, allow_hosts))


def _check_shape(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DownloadError(f"Refusing to download from a {parts.scheme or 'schemeless'} URL.")
    if not parts.hostname:
        raise DownloadError("Refusing to download from a URL without a host.")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class _Policy:
    allow_private: bool
    allow_hosts: frozenset[str]


PRIVATE_HINT = ("Kiln calls only public addresses unless the operator lists this host:port in "
                "KILN_ALLOWED_PRIVATE_HOSTS.")


def _policy(allow_private: bool | None, allow_hosts: Collection[str]) -> _Policy:
    if allow_private is None:
        allow_private = settings.KILN_ALLOW_PRIVATE_URLS
    return _Policy(bool(allow_private), frozenset(allow_hosts) | frozenset(settings.KILN_ALLOWED_PRIVATE_HOSTS))


# IPv6 forms that carry an IPv4 address a connection may end up at: NAT64's well-known
# prefix (an IPv6-only host's DNS64 answers this for an IPv4-only provider).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally reachable per the IANA registries, though older Pythons' ``is_global`` says
# otherwise (3.12.1: 192.0.0.8, 3fff::/20 documentation, deprecated site-local fec0::/10).
_NOT_GLOBAL = tuple(ipaddress.ip_network(net) for net in ("192.0.0.0/24", "3fff::/20", "fec0::/10"))


def _is_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Anything but a globally routable unicast address. ``is_private`` and ``is_reserved``
    are not enough: shared address space (100.64.0.0/10: CGNAT, Tailscale peers, Alibaba
    Cloud's metadata service at 100.100.100.200) is neither, yet it is never on the Internet.
    An IPv6 address that embeds an IPv4 one (mapped, 6to4, NAT64) is judged by that one."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_private(embedded)
    # Python counts multicast (224.0.0.0/4, ff0e::/16) as global; it is not a server.
    return (not ip.is_global or ip.is_multicast or ip.is_reserved
            or any(ip.version == net.version and ip in net for net in _NOT_GLOBAL))


def check_base_url(url: str) -> None:
    """Refuse, when it is saved, a provider base URL that names a private address outright
    (an IP literal or ``localhost``) and is not allowed. No DNS here: a name that resolves
    to a private address is refused when a connection is made (``_CheckedBackend``)."""
    host, port = _check_shape(url)
    policy = _policy(None, ())
    if policy.allow_private or f"{host}:{port}" in policy.allow_hosts:
        return
    if host == "localhost" or host.endswith(".localhost"):
        private = True
    else:
        try:
            private = _is_private(ipaddress.ip_address(host.split("%")[0]))
        except ValueError:
            return  # a name: checked at connect time
    if private:
        raise DownloadError(f"{host} is a private address. {PRIVATE_HINT}")


def _checked_addresses(host: str, port: int, policy: _Policy) -> list[str]:
    """Resolve ``host`` once and return its addresses, refusing a private one unless the
    policy allows it. The caller connects to exactly these (no second lookup that a
    DNS-rebinding attacker could answer differently)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise DownloadError(f"Cannot resolve {host}.", retryable=True) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if policy.allow_private or f"{host}:{port}" in policy.allow_hosts:
        return addresses
    for address in addresses:
        if _is_private(ipaddress.ip_address(address.split("%")[0])):
            raise DownloadError(f"Refusing to connect to {host}: it resolves to a private address. {PRIVATE_HINT}")
    return addresses


# The address policy of the request or download running in this thread (None: no check).
_address_policy: ContextVar[_Policy | None] = ContextVar("kiln_address_policy", default=None)
# A whole request's end (time.monotonic()), when it has one: every read and write on its
# connection waits at most until then. httpx's timeouts are per operation, so a server
# trickling its status line or headers a byte at a time would otherwise hold the caller.
_deadline: ContextVar[float | None] = ContextVar("kiln_deadline", default=None)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes end by the current request's ``_deadline``."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    @staticmethod
    def remaining(timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout``, cut to what is left of the current request's deadline (if it has one)."""
        end = _deadline.get()
        if end is None:
            return timeout
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise error("The request's deadline passed.")
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self.remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      self.remaining(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _CheckedBackend(httpcore.SyncBackend):
    """Opens a download's connections only to addresses that passed the check, resolved
    once, here, at connect time: the check and the connection cannot see different
    answers (DNS rebinding). TLS still verifies the certificate against the host name."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        policy = _address_policy.get()
        if policy is None:
            timeout = _DeadlineStream.remaining(timeout, httpcore.ConnectTimeout)
            return _DeadlineStream(super().connect_tcp(host, port, timeout, local_address, socket_options))
        error: Exception | None = None
        for address in _checked_addresses(host, port, policy):  # in the resolver's order
            try:
                # Each address gets what is left of the request's deadline, if it has one.
                attempt = _DeadlineStream.remaining(timeout, httpcore.ConnectTimeout)
                return _DeadlineStream(super().connect_tcp(address, port, attempt, local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, as socket.create_connection would
        raise error or httpcore.ConnectError(f"No address for {host}.")


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # httpx (0.28) takes no network backend; its connection pool does.
        self._pool._network_backend = _CheckedBackend()


def same_host(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def download(url: str, dest: IO[bytes], *, max_bytes: int, headers: dict[str, str] | None = None,
             deadline_seconds: float | None = None, max_redirects: int = 5,
             allow_private: bool | None = None, allow_hosts: Collection[str] = (),
             chunk_size: int | None = None) -> Downloaded:
    """Stream ``url`` into ``dest``. Raises DownloadError; ``dest`` may hold a partial file then.

    Bytes are written as they arrive (``chunk_size`` None): a buffered chunk size
    would let a server trickling bytes hold the worker far past the deadline."""
    deadline = time.monotonic() + (deadline_seconds or settings.KILN_DOWNLOAD_DEADLINE_SECONDS)
    send_headers = dict(headers or {})
    policy = _policy(allow_private, allow_hosts)
    for _ in range(max_redirects + 1):
        # Checked now, for a clear answer before anything is sent (and because a kept-alive
        # connection may be reused), and again by _CheckedBackend for any new connection.
        check_url_allowed(url, allow_private=policy.allow_private, allow_hosts=policy.allow_hosts)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DownloadError("The download did not finish before its deadline.", retryable=True)
        token = _address_policy.set(policy)
        try:
            with client().stream("GET", url, headers=send_headers,
                                 timeout=httpx.Timeout(min(30.0, remaining), connect=10.0)) as response:
                if response.is_redirect:
                    target = urljoin(url, response.headers.get("Location", ""))
                    if not same_host(target, url):
                        # Never forward a provider key (or any header it gave) to another host (a CDN).
                        send_headers = {}
                    url = target
                    continue
                if response.status_code != 200:
                    expired = response.status_code in (401, 403, 404, 410)
                    raise DownloadError(f"The media URL answered HTTP {response.status_code}.",
                                        retryable=not expired and response.status_code >= 500,
                                        status_code=response.status_code)
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise DownloadError(f"The file is {int(declared):,} bytes, above the {max_bytes:,}-byte limit.")
                digest = hashlib.sha256()
                size = 0
                head = b""
                for chunk in response.iter_raw(chunk_size):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"The file is larger than the {max_bytes:,}-byte limit.")
                    if time.monotonic() > deadline:
                        raise DownloadError("The download did not finish before its deadline.", retryable=True)
                    if len(head) < 64:
                        head += chunk[: 64 - len(head)]
                    digest.update(chunk)
                    dest.write(chunk)
                if declared and declared.isdigit() and int(declared) != size:
                    raise DownloadError("The download ended before the whole file arrived.", retryable=True)
                return Downloaded(bytes=size, sha256=digest.hexdigest(), head=head,
                                  content_type=response.headers.get("Content-Type", ""), final_url=url)
        except httpx.TimeoutException:
            raise DownloadError("The media server stopped sending data.", retryable=True) from None
        except httpx.TransportError as exc:
            raise DownloadError(f"The download broke off: {type(exc).__name__}.", retryable=True) from None
        finally:
            _address_policy.reset(token)
    raise DownloadError("Too many redirects.")
