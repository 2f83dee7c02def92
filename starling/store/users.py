"""User queries shared by the request path and the worker."""

from __future__ import annotations

from collections.abc import Sequence

from starling.store.services import Services


async def user_ids_by_handle(services: Services, handles: Sequence[str]) -> dict[str, int]:
    """The IDs of the existing users among lower-cased ``handles`` (one query)."""
    if not handles:
        return {}
    users = await services.db.users.find(
        {"handle_lower": {"$in": list(handles)}}, {"_id": 1, "handle_lower": 1}
    ).to_list()
    return {user["handle_lower"]: user["_id"] for user in users}
