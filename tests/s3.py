"""A real S3 API server on loopback: moto in server mode, as its own process.

Used by the tests (``s3_server``, ``media_backend`` in tests/conftest.py), the several-hosts
rehearsal and the benchmarks. Nothing of boto3 is mocked: Kiln talks HTTP to this server as
it would to AWS S3 or MinIO.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import httpx

ACCESS_KEY = "kiln-test-access"
SECRET_KEY = "kiln-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` on a free loopback port, started and stopped by its owner."""

    def __init__(self, port: int | None = None, *, enforce_auth: bool = False):
        self.port = port or _free_port()
        # moto checks signatures and IAM only when asked: a server that refuses unknown keys.
        self.enforce_auth = enforce_auth
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if self.enforce_auth else None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with status {self.process.returncode}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def make_bucket(self, name: str | None = None) -> str:
        name = name or f"kiln-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """What a Kiln process needs in its environment to keep media in ``bucket``."""
        return {"KILN_MEDIA_STORAGE": "s3", "KILN_S3_BUCKET": bucket, "KILN_S3_ENDPOINT_URL": self.endpoint,
                "KILN_S3_REGION": REGION, "KILN_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "KILN_S3_SECRET_ACCESS_KEY": SECRET_KEY, "KILN_S3_PREFIX": prefix}

    def storages_default(self, bucket: str, prefix: str = "") -> dict:
        """The same, as ``settings.STORAGES["default"]`` (what project.env.envmediastorage makes)."""
        return {"BACKEND": "generations.storage.S3MediaStorage",
                "OPTIONS": {"bucket_name": bucket, "region_name": REGION, "endpoint_url": self.endpoint,
                            "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "location": prefix,
                            "querystring_expire": 3600, "addressing_style": "path"}}

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
