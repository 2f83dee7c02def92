import subprocess
import sys
from pathlib import Path

from starling.schema import export_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_matches_export() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), "run `starling export-schema > schema.graphql`"


def test_export_schema_command_prints_the_sdl() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "starling.cli", "export-schema"], capture_output=True, text=True, check=True
    ).stdout
    assert out == export_sdl()
    assert "homeFeed(first: Int = 20, after: String): TweetConnection!" in out
