"""Who a tweet or comment mentions: a domain operation the notification job shares."""

from __future__ import annotations

from starling.resolvers.text import mentioned_handles
from starling.store.services import Services
from starling.store.users import user_ids_by_handle


async def mentioned_user_ids(services: Services, text: str, author_id: int) -> list[int]:
    """Existing users @mentioned in ``text`` (tweet or comment), in order, the author aside."""
    handles = mentioned_handles(text)
    by_handle = await user_ids_by_handle(services, handles)
    return [by_handle[h] for h in handles if h in by_handle and by_handle[h] != author_id]
