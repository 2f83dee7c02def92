"""Which browser origins may call the API: ``CORS_ALLOWED_ORIGINS``, for HTTP (CORS) and
for the WebSocket handshake's origin check alike.

The setting is a comma-separated list of origins (``https://app.example.com``); a port may
be ``*`` (``http://localhost:*``: any port, or none), and ``*`` alone allows every origin.
Requests without an ``Origin`` (not a browser) and same-origin ones never need listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANY = "*"
DEV_ORIGINS = "http://localhost:*,http://127.0.0.1:*"
_ANY_PORT = ":*"


def _pattern(origin: str) -> str:
    origin = origin.rstrip("/")
    if origin.endswith(_ANY_PORT):
        return re.escape(origin[: -len(_ANY_PORT)]) + "(?::[0-9]{1,5})?"
    return re.escape(origin)


@dataclass(frozen=True, slots=True)
class AllowedOrigins:
    any: bool
    regex: str | None  # fullmatch of every listed origin; None when none is

    @classmethod
    def parse(cls, setting: str) -> AllowedOrigins:
        entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
        if ANY in entries:
            return cls(any=True, regex=None)
        if not entries:
            return cls(any=False, regex=None)
        # Scheme and host are case-insensitive; Starlette's CORS middleware compiles this as is.
        return cls(any=False, regex="(?i)" + "|".join(_pattern(entry) for entry in entries))

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        return self.regex is not None and re.fullmatch(self.regex, origin) is not None
