"""Per-request DataLoaders: a fresh set for each request, so nothing leaks between viewers."""

from __future__ import annotations

from functools import cached_property

from starling.loaders.documents import ByIdLoader, EdgeExistsLoader, TweetLoader, UserLoader
from starling.loaders.engagement import CountsLoader, ViewerEngagementLoader
from starling.store.documents import CommentDoc
from starling.store.services import Services
from starling.store.viewer_engagement import Engagement


class Loaders:
    """Created lazily: a request only pays for the loaders it touches."""

    def __init__(self, services: Services, viewer_id: int | None) -> None:
        self._services = services
        self._viewer_id = viewer_id

    @cached_property
    def users(self) -> UserLoader:
        return UserLoader(self._services)

    @cached_property
    def tweets(self) -> TweetLoader:
        return TweetLoader(self._services)

    @cached_property
    def comments(self) -> ByIdLoader[CommentDoc]:
        """comment ID -> the comment, or None once deleted."""
        return ByIdLoader(self._services.db.comments)

    @cached_property
    def viewer_follows(self) -> EdgeExistsLoader:
        """user ID -> does the viewer follow them (viewer must be signed in)."""
        return EdgeExistsLoader(
            self._services.db.follows, "follower_id", self._require_viewer(), "followee_id"
        )

    @cached_property
    def follows_viewer(self) -> EdgeExistsLoader:
        """user ID -> do they follow the viewer."""
        return EdgeExistsLoader(
            self._services.db.follows, "followee_id", self._require_viewer(), "follower_id"
        )

    @cached_property
    def counts(self) -> CountsLoader:
        """tweet ID -> its like, comment and retweet counts."""
        return CountsLoader(self._services)

    @cached_property
    def viewer_likes(self) -> ViewerEngagementLoader:
        """tweet ID -> has the viewer liked it."""
        return ViewerEngagementLoader(self._services, self._require_viewer(), Engagement.LIKED)

    @cached_property
    def viewer_bookmarks(self) -> EdgeExistsLoader:
        """tweet ID -> has the viewer bookmarked it."""
        return EdgeExistsLoader(self._services.db.bookmarks, "user_id", self._require_viewer(), "tweet_id")

    @cached_property
    def viewer_retweets(self) -> ViewerEngagementLoader:
        """tweet ID -> has the viewer a live retweet of it."""
        return ViewerEngagementLoader(self._services, self._require_viewer(), Engagement.RETWEETED)

    def _require_viewer(self) -> int:
        if self._viewer_id is None:
            raise RuntimeError("viewer loaders need a signed-in viewer")
        return self._viewer_id
