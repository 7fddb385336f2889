"""A superuser's way in when password sign-in is off and the provider cannot be used.

``manage.py breakglass EMAIL`` (the operator, on the server) prints a link that signs that
superuser in once, within ``LINK_SECONDS``. It is signed with SECRET_KEY and carries the
account's ``last_login``, which signing in changes, so it works once; nothing is stored. The
session it opens is not rechecked at the provider: the operator is fixing that very provider."""

from __future__ import annotations

from django.core import signing

from accounts.models import User

LINK_SECONDS = 600
# Marks a session signed in by a link: the provider recheck (``middleware.py``) leaves it alone,
# since the link is for when the provider refuses Kiln, or cannot be asked.
SESSION_KEY = "kiln_breakglass"
_SALT = "kiln.accounts.oidc.breakglass"


def _stamp(user: User) -> str:
    return user.last_login.isoformat() if user.last_login else "never"


def make_token(user: User) -> str:
    if not (user.is_superuser and user.is_active):
        raise ValueError(f"{user.email} is not an active superuser")
    return signing.dumps({"u": user.pk, "l": _stamp(user)}, salt=_SALT, compress=True)


def check_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_SECONDS)
    except signing.BadSignature:
        return None
    user = User.objects.filter(pk=data.get("u"), is_superuser=True, is_active=True).first()
    if user is None or _stamp(user) != data.get("l"):
        return None
    return user
