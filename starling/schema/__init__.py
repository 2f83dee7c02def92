"""The GraphQL schema: ``schema`` is what the app serves and ``starling export-schema`` prints."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from starling.schema.errors import ErrorCodes
from starling.schema.mutation import Mutation
from starling.schema.query import Query

PARSE_CACHE_SIZE = 1024

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        ErrorCodes,
        lambda: ParserCache(maxsize=PARSE_CACHE_SIZE),
        lambda: ValidationCache(maxsize=PARSE_CACHE_SIZE),
    ],
)


def export_sdl() -> str:
    return schema.as_str() + "\n"
