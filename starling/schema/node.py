"""The ``Node`` interface of global object identification (``resolvers.nodes``)."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object that `node(id:)` and `nodes(ids:)` find by its ID alone.")
class Node:
    id: strawberry.ID
