"""Media on an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...): ``KILN_MEDIA_STORAGE=s3``.

django-storages' ``S3Storage`` with what Kiln needs on top of it; the bucket stays
private (Kiln streams media to people through its own access-checked views).
Settings come from ``project.env.envmediastorage``; docs/deploy.md, "Media on
S3-compatible storage", says what an operator sets up and why.

Reads stream. django-storages' ``S3File`` copies the whole object into a temporary file
on its first read: a 2 GB video would be fetched in full to serve a Range request for
its last megabyte, and the bulk zip would hold a copy of every file it streams. Here
``open(name, "rb")`` is ``RangedFile``: a HEAD for the size (and the ETag), then one
ranged GET per sequential run of reads, read as the caller reads; a seek drops the
response and the next read starts a new ranged GET at the new place. Memory is one
buffer (``READ_BUFFER``), whatever the object's size.

Writes are bounded too: ``save`` is a managed multipart upload whose parts are read
into memory, at most ``UPLOAD_PARTS_IN_MEMORY`` + 1 of ``UPLOAD_PART_SIZE`` at a time
(``upload_transfer_config``).

Errors: a missing object is ``FileNotFoundError`` as on a disk; a broken deployment
(no such bucket, refused credentials, an endpoint that does not answer) is
``StorageUnavailable`` with a message for the operator (``generations.storage_errors``).
"""

from __future__ import annotations

import io
from contextlib import contextmanager

from django.core.files.base import File

from generations.storage_errors import StorageUnavailable

try:
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from storages.backends.s3 import S3Storage
    from storages.utils import clean_name
except ImportError as exc:  # pragma: no cover - depends on the install
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("KILN_MEDIA_STORAGE=s3 needs the s3 extra: pip install 'kiln[s3]'") from exc

MB = 1024 * 1024
READ_BUFFER = 256 * 1024          # what one read from a ranged GET asks of the socket (serving's chunk)
# Parts of 8 MiB (S3's minimum is 5 MiB; 10,000 parts make 80 GB, far above KILN_MAX_VIDEO_BYTES),
# two in flight and two held in memory: at most 3 x 8 = 24 MiB per upload in progress (the one
# being read waits for a slot), while two parallel PUTs keep a bucket's write speed above what a
# provider's CDN delivers to the download worker. The download worker runs uploads in several
# threads at once, so the per-upload figure is what matters (docs/deploy.md).
UPLOAD_PART_SIZE = 8 * MB
UPLOAD_CONCURRENCY = 2
UPLOAD_PARTS_IN_MEMORY = 2


def upload_transfer_config() -> TransferConfig:
    """boto3's managed upload, bounded in memory (see the figures above)."""
    config = TransferConfig(multipart_threshold=UPLOAD_PART_SIZE, multipart_chunksize=UPLOAD_PART_SIZE,
                            max_concurrency=UPLOAD_CONCURRENCY, use_threads=True,
                            # The classic transfer manager: the CRT one (when awscrt is installed)
                            # ignores these limits.
                            preferred_transfer_client="classic")
    # s3transfer reads each part of a file object into memory before sending it; this is its
    # bound on how many (boto3's TransferConfig does not take it as an argument, its base does).
    config.max_in_memory_upload_chunks = UPLOAD_PARTS_IN_MEMORY
    return config


def _status(exc: ClientError) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


_OBJECT_MISSING = {"404", "NoSuchKey", "NotFound"}
_HINTS = {
    "NoSuchBucket": "the bucket does not exist at this endpoint: check KILN_S3_BUCKET, KILN_S3_ENDPOINT_URL "
                    "and KILN_S3_REGION, or create it",
    "InvalidAccessKeyId": "the store does not know this access key: check KILN_S3_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret does not match the access key: check KILN_S3_SECRET_ACCESS_KEY",
    "AccessDenied": "the credentials may not use this bucket: check the key's permissions and the bucket's "
                    "policy (Kiln needs s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket and the "
                    "multipart upload actions)",
    "403": "the store refused the credentials: check KILN_S3_ACCESS_KEY_ID, KILN_S3_SECRET_ACCESS_KEY and the "
           "bucket's policy",
    "PermanentRedirect": "the bucket is in another region: check KILN_S3_REGION",
    "AuthorizationHeaderMalformed": "the bucket is in another region: check KILN_S3_REGION",
}


class S3MediaStorage(S3Storage):
    """Private objects, never overwritten by a name clash (Kiln chooses every name), read as
    streams, written in bounded memory, failing with errors an operator can act on."""

    default_acl = None
    file_overwrite = False

    def __init__(self, **settings):
        settings.setdefault("transfer_config", upload_transfer_config())
        super().__init__(**settings)
        # A store that does not answer fails a request in seconds (three tries, botocore's
        # standard retry mode), not after the legacy mode's minutes of backoff.
        self.client_config = self.client_config.merge(
            Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}))

    # -- errors ----------------------------------------------------------------------------

    def _where(self) -> str:
        return f"bucket {self.bucket_name!r} at {self.endpoint_url or 'AWS S3'} ({self.region_name or 'no region'})"

    def unavailable(self, exc: Exception) -> StorageUnavailable:
        """The operator's message for a failure that is the deployment's, not one file's."""
        if isinstance(exc, ClientError):
            code = _code(exc) or str(_status(exc))
            hint = _HINTS.get(code) or _HINTS.get(str(_status(exc))) or "see the store's own log"
            return StorageUnavailable(f"Media storage {self._where()} answered {code} "
                                      f"(HTTP {_status(exc)}): {hint}.")
        return StorageUnavailable(f"Media storage {self._where()} cannot be used: {exc} "
                                  "(check KILN_S3_ENDPOINT_URL and that the store is up).")

    def _check_bucket(self) -> None:
        """After a 404 on an object: the bucket itself may be what is missing (a HEAD answers
        404 with no body either way). Only asked on a miss, which is rare."""
        try:
            self.connection.meta.client.head_bucket(Bucket=self.bucket_name)
        except ClientError as exc:
            if _status(exc) == 404:
                raise StorageUnavailable(f"Media storage {self._where()}: {_HINTS['NoSuchBucket']}.") from None
            raise self.unavailable(exc) from exc
        except BotoCoreError as exc:
            raise self.unavailable(exc) from exc

    @contextmanager
    def errors(self, key: str):
        """Translate boto's errors: a missing object is FileNotFoundError, anything the bucket,
        the credentials or the network did is StorageUnavailable."""
        try:
            yield
        except ClientError as exc:
            if _status(exc) == 404 and _code(exc) in _OBJECT_MISSING:
                self._check_bucket()
                raise FileNotFoundError(f"No such file in the media storage: {key}") from None
            raise self.unavailable(exc) from exc
        except BotoCoreError as exc:
            raise self.unavailable(exc) from exc

    # -- reads -----------------------------------------------------------------------------

    def _open(self, name, mode="rb"):
        if "r" not in mode or "+" in mode:  # writing: django-storages' S3File (Kiln itself writes with save())
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        client = self.connection.meta.client
        with self.errors(key):
            head = client.head_object(Bucket=self.bucket_name, Key=key)
        raw = _RangedReader(self, client, key, head["ContentLength"], head.get("ETag"))
        return RangedFile(io.BufferedReader(raw, buffer_size=READ_BUFFER), name=name, size=raw.size, storage=self)

    def size(self, name):
        key = self._normalize_name(clean_name(name))
        with self.errors(key):
            return self.connection.meta.client.head_object(Bucket=self.bucket_name, Key=key)["ContentLength"]

    def exists(self, name):
        try:
            self.size(name)
        except FileNotFoundError:
            return False
        return True

    def location_of(self, name) -> str:
        """``s3://bucket/key``: where an operator finds a file with the store's own tools."""
        return f"s3://{self.bucket_name}/{self._normalize_name(clean_name(name))}"

    # -- writes ----------------------------------------------------------------------------

    def _save(self, name, content):
        with self.errors(name):
            return super()._save(name, content)

    def delete(self, name):
        """Deleting what is not there is fine (as on a disk); a missing bucket is not."""
        key = self._normalize_name(clean_name(name))
        with self.errors(key):
            self.connection.meta.client.delete_object(Bucket=self.bucket_name, Key=key)


class RangedFile(File):
    """A read-only, seekable stored file (``File`` over the buffered ranged reader)."""

    def __init__(self, file, name: str, size: int, storage: S3MediaStorage):
        super().__init__(file, name=name)
        self._size = size
        self._storage = storage

    @property
    def size(self) -> int:
        return self._size

    def open(self, mode=None):
        """Closed, it opens again through the storage (a fresh HEAD), as a file on disk reopens by
        its path: a model's ``FieldFile`` keeps its file, and ``field.open()`` after a ``with`` block
        (the same gallery image checked once per model of a compare batch) reopens it."""
        if self.closed:
            fresh = self._storage.open(self.name, "rb")
            self.file, self._size = fresh.file, fresh.size
        else:
            self.seek(0)
        return self


class _RangedReader(io.RawIOBase):
    """The object's bytes from ``pos``: one open-ended ranged GET, read as far as the caller reads.

    The GETs carry the ETag the HEAD saw (``If-Match``): an object replaced while it is being
    read fails the next GET (412) instead of splicing two versions into one response."""

    mode = "rb"

    def __init__(self, storage: S3MediaStorage, client, key: str, size: int, etag: str | None):
        super().__init__()
        self.storage, self.client, self.key, self.size, self.etag = storage, client, key, size, etag
        self.name = key
        self.pos = 0
        self.body = None
        self.gets = 0          # ranged GETs made (tests and benchmarks read it)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self.pos:
            self._drop()
        self.pos = target
        return target

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or not len(buffer):
            return 0
        if self.body is None:
            self.body = self._get()
        try:
            data = self.body.read(len(buffer))
        except (BotoCoreError, OSError) as exc:
            self._drop()
            raise self.storage.unavailable(exc) from exc
        if not data:
            self._drop()
            raise OSError(f"{self.key}: the stored object ended at byte {self.pos} of {self.size}")
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def _get(self):
        params = {"Bucket": self.storage.bucket_name, "Key": self.key, "Range": f"bytes={self.pos}-"}
        if self.etag:
            params["IfMatch"] = self.etag
        self.gets += 1
        try:
            with self.storage.errors(self.key):
                return self.client.get_object(**params)["Body"]
        except StorageUnavailable as exc:
            if isinstance(exc.__cause__, ClientError) and _status(exc.__cause__) == 412:
                raise OSError(f"{self.key} was replaced while it was being read") from None
            raise

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._drop()
        super().close()

