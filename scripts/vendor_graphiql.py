"""Re-fetch the GraphiQL page's assets from the npm registry into starling/static/graphiql/.

Strawberry's GraphiQL page loads GraphiQL, React, the explorer plugin and js-cookie from a
public CDN, which makes it a blank page without internet. Starling serves the same files
itself (``starling/graphiql.py``). This script reads the asset URLs (with their pinned
versions and subresource-integrity hashes) from the installed Strawberry's own page, takes
each file from the package tarball ``npm pack`` downloads, checks it against the page's
integrity hash, and copies it with the package's licence; ``VERSIONS`` records what was
taken. Run it after upgrading Strawberry when its page names new versions:

    .venv/bin/python scripts/vendor_graphiql.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starling.graphiql import ASSET_DIR, cdn_assets, strawberry_page  # noqa: E402

LICENCE = re.compile(r"^package/(LICEN[CS]E|COPYING)[^/]*$", re.IGNORECASE)


def sri(data: bytes, algorithm: str) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def main() -> None:
    page = strawberry_page()
    assets = cdn_assets(page)
    packages = sorted({(asset.package, asset.version) for asset in assets})
    if ASSET_DIR.exists():
        shutil.rmtree(ASSET_DIR)
    with tempfile.TemporaryDirectory() as work:
        tarballs: dict[tuple[str, str], Path] = {}
        for package, version in packages:
            out = subprocess.run(
                ["npm", "pack", "--silent", f"{package}@{version}"],
                cwd=work,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            tarballs[(package, version)] = Path(work) / out
        for package, version in packages:
            target = ASSET_DIR / f"{package}@{version}"
            with tarfile.open(tarballs[(package, version)]) as tar:
                for member in tar.getmembers():
                    if LICENCE.match(member.name):
                        _extract(tar, member, target / Path(member.name).name)
                for asset in assets:
                    if (asset.package, asset.version) != (package, version):
                        continue
                    data = _extract(tar, tar.getmember(f"package/{asset.path}"), target / asset.path)
                    algorithm = asset.integrity.split("-", 1)[0]
                    if sri(data, algorithm) != asset.integrity:
                        sys.exit(
                            f"{asset.url}: the npm package's file does not match the page's integrity hash"
                        )
                _extract(tar, tar.getmember("package/package.json"), target / "package.json")
        for package, version in packages:
            _ensure_licence(ASSET_DIR / f"{package}@{version}", packages)
    lines = [f"{package}@{version}" for package, version in packages]
    (ASSET_DIR / "VERSIONS").write_text(
        "# GraphiQL page assets, from the npm registry by scripts/vendor_graphiql.py\n"
        + "\n".join(lines)
        + "\n"
    )
    print("\n".join(lines))


def _manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "package.json").read_text())


def _repository(manifest: dict[str, Any]) -> str:
    repository = manifest.get("repository") or {}
    url = repository.get("url", "") if isinstance(repository, dict) else str(repository)
    return re.sub(r"^(git\+)?https?://|\.git$", "", url)


def _licence_files(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if LICENCE.match(f"package/{path.name}")]


def _ensure_licence(directory: Path, packages: list[tuple[str, str]]) -> None:
    """A package whose tarball has no licence file (the explorer plugin) gets the licence of
    a vendored package from the same repository under the same licence, saying so."""
    if _licence_files(directory):
        return
    manifest = _manifest(directory)
    for package, version in packages:
        sibling = ASSET_DIR / f"{package}@{version}"
        other = _manifest(sibling)
        if sibling == directory or _repository(other) != _repository(manifest):
            continue
        if other.get("license") == manifest.get("license") and _licence_files(sibling):
            source = _licence_files(sibling)[0]
            (directory / "LICENSE").write_text(
                f"The npm package {manifest['name']}@{manifest['version']} declares the "
                f"{manifest['license']} licence and ships no licence file; this is the licence of "
                f"{other['name']}, from the same repository ({_repository(manifest)}).\n\n"
                + source.read_text()
            )
            return
    sys.exit(f"{manifest['name']}@{manifest['version']} ships no licence file")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> bytes:
    source = tar.extractfile(member)
    assert source is not None, member.name
    data = source.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


if __name__ == "__main__":
    main()
