"""Starting and driving the test OpenID Connect provider (a gunicorn process of its own)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OIDCProvider:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/o"
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "provider.log"

    def _env(self) -> dict:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # a new RS256 key each start
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KILN_", "DATABASE_URL"))}
        return {**env, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
                "OIDC_PROVIDER_DB": str(self.workdir / "provider.sqlite3"), "OIDC_PROVIDER_RSA_KEY": pem,
                "PYTHONUNBUFFERED": "1"}

    def start(self) -> OIDCProvider:
        env = self._env()
        subprocess.run([sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        with open(self.log_path, "wb") as log:
            # One worker process: the control API's misbehaviour switch is that process's memory.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{self.port}",
                 "--access-logfile", "-", "tests.oidc_provider.wsgi"],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test OpenID provider did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def control(self, action: str, **body) -> None:
        response = httpx.post(f"{self.url}/_control/{action}", json=body, timeout=10)
        response.raise_for_status()

    def person(self, email: str, password: str = "idp-password-1", *, email_verified: bool = True, name: str = ""):
        self.control("person", email=email, password=password, email_verified=email_verified, name=name)

    def client(self, client_id: str, secret: str, redirect_uris: list[str]):
        self.control("client", client_id=client_id, secret=secret, redirect_uris=redirect_uris)

    def rename(self, email: str, new_email: str):
        self.control("rename", email=email, new_email=new_email)

    def disable(self, email: str):
        self.control("disable", email=email)

    def revoke(self, email: str):
        self.control("revoke", email=email)

    def misbehave(self, **how):
        """``audience="other-client"``: ID tokens name another audience; ``expired=True``: they are
        already expired; ``nonce="x"``: they carry another nonce; ``foreign_key=True``: they are
        signed by a key that is not the provider's. ``misbehave()`` puts it right."""
        self.control("misbehave", **how)
