"""Domain errors. Each carries the ``extensions.code`` clients see (DESIGN.md §5)."""

from __future__ import annotations


class StarlingError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        """What the client sees as the error's ``extensions``."""
        return {"code": self.code}


class Unauthenticated(StarlingError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in to do this: send `Authorization: Bearer <token>`."):
        super().__init__(message)


class Forbidden(StarlingError):
    code = "FORBIDDEN"


class NotFound(StarlingError):
    code = "NOT_FOUND"


class BadUserInput(StarlingError):
    code = "BAD_USER_INPUT"


class Conflict(StarlingError):
    code = "CONFLICT"


class RateLimited(StarlingError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # whole seconds, at least 1, when waiting helps

    @property
    def extensions(self) -> dict[str, object]:
        if self.retry_after is None:
            return super().extensions
        return {**super().extensions, "retryAfter": self.retry_after}
