"""Media on an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...): ``KILN_MEDIA_STORAGE=s3``.

django-storages' ``S3Storage`` with what Kiln needs on top of it; the bucket stays
private (Kiln streams media to people through its own access-checked views).
Settings come from ``project.env.envmediastorage``.
"""

from __future__ import annotations

try:
    from storages.backends.s3 import S3Storage
except ImportError as exc:  # pragma: no cover - depends on the install
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("KILN_MEDIA_STORAGE=s3 needs the s3 extra: pip install 'kiln[s3]'") from exc


class S3MediaStorage(S3Storage):
    """Private objects, never overwritten by a name clash (Kiln chooses every name)."""

    default_acl = None
    file_overwrite = False
