"""Secrets cut out of what providers say, before Kiln stores or shows any of it.

A provider's words reach every member of the team (a generation's error on its card
and page), the ledger (a release's reason), the key's ``last_error`` and the admin
(``raw_payload``). Providers echo what they were sent: the team's own key in "invalid
key sk-…", an ``Authorization`` header in a debug dump, another service's token in an
upstream error. So every string an adapter returns or raises passes through here,
enforced once for every adapter by ``Provider`` (see ``base.Provider.__init_subclass__``).

Cut: the job's own API key wherever it appears; ``Bearer``/``Basic``/``Token``
credentials; values named like a secret (``api_key=``, ``"token": "…"``, a URL's
``signature=``); and strings shaped like well-known API keys and tokens (``sk-…``,
``sk_live_…``, AWS ``AKIA…``, Google ``AIza…``, GitHub ``ghp_…``, Slack ``xox?-…``,
Hugging Face ``hf_…``, Replicate ``r8_…``, JWTs). The job's key keeps the mask the key
list shows (``••••last4``, bullets alone for a short key) so an admin can tell which key
it was. Output URLs are not touched: they are what the download fetches.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
# Shorter than this, a "key" would match ordinary words: only long-enough keys are cut
# wherever they appear (a shorter one is still cut where it is named or shaped like one).
MIN_SECRET_LENGTH = 6
# A key's last four characters are shown (and kept in clear) only when the key is at least
# this long: of a short key they would be most of it (the key list's mask uses it too).
MASK_HINT_MIN_LENGTH = 16

# The names of secrets, to find their values.
_SECRET_NAMES = "|".join((
    r"api[_-]?key", "apikey", "x-api-key", r"api[_-]?token", r"access[_-]?token", r"auth[_-]?token",
    r"refresh[_-]?token", r"id[_-]?token", r"secret(?:[_-]?key)?", r"client[_-]?secret", "password", "passwd",
    "authorization", "token", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "signature", "sig"))
_NAMED_VALUE = re.compile(
    rf"""(?ix)
    (?<![A-Za-z0-9])((?:{_SECRET_NAMES}))       # the name
    (["']?\s*[:=]\s*["']?)                     # = or : and any quotes
    (?!bearer\b|basic\b|token\b)               # "Authorization: Bearer …" is the next pattern's
    ([^\s"'&,;<>{{}}\[\]]{{{MIN_SECRET_LENGTH},}})  # the value
    """)
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)(\s+)([A-Za-z0-9\-._~+/]{8,}=*)")
_KEY_SHAPES = re.compile(
    r"""(?x)
    (?<![A-Za-z0-9])(?:
        sk-[A-Za-z0-9_\-]{16,}                  # OpenAI and the many APIs shaped like it (sk-proj-…, sk-ant-…)
      | (?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}
      | AKIA[0-9A-Z]{16}
      | AIza[0-9A-Za-z_\-]{35}
      | gh[pousr]_[A-Za-z0-9]{36,}
      | github_pat_[A-Za-z0-9_]{40,}
      | xox[abprs]-[A-Za-z0-9\-]{10,}
      | hf_[A-Za-z0-9]{30,}
      | r8_[A-Za-z0-9]{30,}
      | eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}   # a JWT
    )""")
_SECRET_KEY_NAME = re.compile(rf"(?i)^(?:{_SECRET_NAMES})$")


def key_mask(api_key: str) -> str:
    return "••••" + api_key[-4:] if len(api_key) >= MASK_HINT_MIN_LENGTH else "••••••••"


def redact(text: str, api_key: str = "") -> str:
    """``text`` without the job's ``api_key`` and without anything shaped like a credential."""
    if not text:
        return text
    if api_key and len(api_key) >= MIN_SECRET_LENGTH and api_key in text:
        text = text.replace(api_key, key_mask(api_key))
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _NAMED_VALUE.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact_value(value: Any, api_key: str = "") -> Any:
    """A provider's JSON (a raw payload) with every string redacted, and every value under
    a secret's name (``{"api_key": …}``, ``{"Authorization": …}``) replaced whole."""
    if isinstance(value, str):
        return redact(value, api_key)
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEY_NAME.match(k) and v not in (None, "")
                    else redact_value(v, api_key)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item, api_key) for item in value]
    return value
