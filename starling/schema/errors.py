"""Every error a client sees carries ``extensions.code`` and a message a person can act on.

- Domain errors (``resolvers.errors``) keep their message and code.
- Errors GraphQL itself raises before running anything (syntax, unknown field, a variable
  of the wrong type) are the client's: ``BAD_USER_INPUT``.
- An operation of a type refused where it was sent (a query or mutation over a WebSocket)
  is ``BAD_USER_INPUT`` saying where to send it.
- A datastore that cannot be reached is ``INTERNAL_SERVER_ERROR`` saying to retry.
- Anything else is a bug: logged with its traceback, shown as ``INTERNAL_SERVER_ERROR``
  with no detail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError, SubsequentIncrementalExecutionResult
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import StreamExecutionResult

from starling.resolvers.errors import StarlingError
from starling.store.media import MediaStoreUnavailable

log = logging.getLogger("starling.errors")

INTERNAL_MESSAGE = "Something went wrong on our side; it has been logged."
UNAVAILABLE_MESSAGE = "A datastore is unreachable right now; try again in a moment."
# Where an operation type is refused: a WebSocket runs subscriptions only (app.py).
OPERATION_TYPE_HINT = "A WebSocket runs subscriptions only: send queries and mutations over HTTP."
# Outages, not bugs: the client can act on them (retry), so they say so.
DATASTORE_OUTAGES = (RedisConnectionError, RedisTimeoutError, ConnectionFailure, MediaStoreUnavailable)
# Strawberry's refusals before validation (no such operation, a subscription over HTTP, no
# query): over HTTP they answer 400, over a WebSocket they arrive here as errors.
OPERATION_MISTAKES = (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError)


def coded_error(
    message: str, code: str, source: GraphQLError | None = None, extensions: dict[str, object] | None = None
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=source.nodes if source else None,
        source=source.source if source else None,
        positions=source.positions if source else None,
        path=source.path if source else None,
        extensions={"code": code, **(extensions or {})},
    )


def classify(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, StarlingError):
        return coded_error(original.message, original.code, error, original.extensions)
    if isinstance(original, InvalidOperationTypeError):
        return coded_error(
            f"{error.message.capitalize()} here. {OPERATION_TYPE_HINT}", "BAD_USER_INPUT", error
        )
    if original is None or isinstance(original, (GraphQLError, *OPERATION_MISTAKES)):
        if error.extensions and "code" in error.extensions:
            return error
        return coded_error(error.message, "BAD_USER_INPUT", error)
    if isinstance(original, DATASTORE_OUTAGES):
        log.warning("datastore unavailable at %s: %s", error.path, original)
        return coded_error(UNAVAILABLE_MESSAGE, "INTERNAL_SERVER_ERROR", error)
    log.error("unexpected error at %s", error.path, exc_info=original)
    return coded_error(INTERNAL_MESSAGE, "INTERNAL_SERVER_ERROR", error)


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [classify(error) for error in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # A subscription sends each result (a refusal, an error while streaming) before its
        # operation ends. Classifying twice is harmless: a coded error passes unchanged.
        # A later incremental payload (@defer/@stream) carries no top-level errors.
        if not isinstance(result, SubsequentIncrementalExecutionResult) and result.errors:
            result.errors = [classify(error) for error in result.errors]
        yield
