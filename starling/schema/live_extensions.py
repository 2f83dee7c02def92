"""Extensions of one subscription result: what the live stream attached to the event it
yielded (``resolvers.live.EVENT_EXTENSIONS``), such as ``missed`` on a resumed home feed's
first replayed tweet when more were missed than it replays."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from starling.resolvers.live import EVENT_EXTENSIONS


class LiveEventExtensions(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        # Read and cleared at once: they belong to this one result.
        extensions = EVENT_EXTENSIONS.get()
        if extensions is None:
            return {}
        EVENT_EXTENSIONS.set(None)
        return extensions
