"""The GraphQL schema: ``schema`` is what the app serves and ``starling export-schema`` prints."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache

from starling.schema.errors import ErrorCodes
from starling.schema.execution import StarlingExecutor
from starling.schema.limits import QueryBudget
from starling.schema.mutation import Mutation
from starling.schema.observability import OperationMetrics
from starling.schema.query import Query
from starling.schema.subscription import Subscription

PARSE_CACHE_SIZE = 1024


class StarlingSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error with a traceback; here client mistakes and domain
        refusals are not server errors, and ``ErrorCodes`` logs the unexpected ones."""


schema = StarlingSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=StarlingExecutor,
    extensions=[
        OperationMetrics,  # first: it sees the errors once ErrorCodes has coded them
        ErrorCodes,
        QueryBudget,
        lambda: ParserCache(maxsize=PARSE_CACHE_SIZE),
        lambda: ValidationCache(maxsize=PARSE_CACHE_SIZE),
    ],
)


def export_sdl() -> str:
    return schema.as_str() + "\n"
