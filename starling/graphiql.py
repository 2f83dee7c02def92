"""GraphiQL that works without internet: Strawberry's page, with its assets served by Starling.

Strawberry's page loads GraphiQL, React, the explorer plugin and js-cookie from a public
CDN. The same files, at the versions the page pins, are shipped in
``starling/static/graphiql/<package>@<version>/`` with their licences (fetched from the npm
registry by ``scripts/vendor_graphiql.py``, which checks each against the page's integrity
hash) and served under ``ASSET_ROUTE``; the page is Strawberry's own with each CDN URL
pointed there, so the integrity attributes still hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

ASSET_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
ASSET_ROUTE = "/static/graphiql"
CDN = "https://unpkg.com/"
# <url> with its integrity attribute: `src="https://unpkg.com/react@18.2.0/umd/x.js"
# integrity="sha384-..."`; the package may be scoped (@graphiql/plugin-explorer).
_ASSET = re.compile(
    r'(?:src|href)="(?P<url>' + re.escape(CDN) + r'(?P<package>(?:@[^/@"]+/)?[^/@"]+)@(?P<version>[^/"]+)/'
    r'(?P<path>[^"]+))"\s+integrity="(?P<integrity>[^"]+)"'
)


@dataclass(frozen=True, slots=True)
class CdnAsset:
    url: str
    package: str
    version: str
    path: str
    integrity: str

    @property
    def local_path(self) -> str:
        return f"{self.package}@{self.version}/{self.path}"


def strawberry_page() -> str:
    return get_graphql_ide_html(graphql_ide="graphiql")


def cdn_assets(page: str) -> list[CdnAsset]:
    return [CdnAsset(**match.groupdict()) for match in _ASSET.finditer(page)]


@lru_cache
def offline_page() -> str:
    """Strawberry's GraphiQL page with every asset served from ``ASSET_ROUTE``.

    Fails loudly (at start-up, not in a browser) when the page names an asset that is not
    shipped: Strawberry was upgraded and ``scripts/vendor_graphiql.py`` must be re-run."""
    page = strawberry_page()
    for asset in cdn_assets(page):
        if not (ASSET_DIR / asset.local_path).is_file():
            raise RuntimeError(
                f"GraphiQL asset {asset.local_path} is not shipped: run scripts/vendor_graphiql.py"
            )
        page = page.replace(asset.url, f"{ASSET_ROUTE}/{asset.local_path}")
    if CDN in page:
        raise RuntimeError("Strawberry's GraphiQL page names a CDN asset Starling cannot rewrite")
    return page
