"""The README is the front door: its Quick start and configuration must stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path

from starling.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_quick_start_is_two_commands_in_one_block() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    commands = blocks[0].strip().splitlines()
    assert commands == ["python3 run.py dev --seed", "python3 run.py test"]


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert not missing, f"README lacks {missing}"


def test_quick_start_says_how_to_change_the_port() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "--port" in section and "`PORT" in section and "PUBLIC_URL" in section


def test_graphiql_examples_mention_users_of_the_demo_network() -> None:
    from starling.demo import demo_handles

    section = README.split("### Try it in GraphiQL", 1)[1].split("\n## ", 1)[0]
    mentioned = re.findall(r"@(\w+)", section)
    assert mentioned and set(mentioned) <= set(demo_handles())


def test_the_key_table_names_every_redis_key() -> None:
    """Each key builder of store.keys appears in the README's key table (its role and slot)."""
    from starling.store.keys import Keys

    table = README.split("## Redis roles and keys", 1)[1].split("\n## ", 1)[0]
    builders = [name for name in vars(Keys) if not name.startswith("_") and callable(getattr(Keys, name))]
    missing = [name for name in builders if f"`{name}(" not in table and f" {name}(" not in table]
    assert not missing, f"README key table lacks {missing}"


def _shard_key_text(key: dict[str, int | str]) -> str:
    return "{" + ", ".join(f"{field}: {json.dumps(value)}" for field, value in key.items()) + "}"


def test_the_shard_key_table_is_the_declaration() -> None:
    from starling.store.mongo import SHARD_KEYS, unique_indexes

    section = README.split("### Sharding MongoDB", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \| ([^|]*) \|", section, flags=re.M)
    documented = {name: (key, uniques.strip()) for name, key, uniques in rows}
    declared = {
        name: (
            _shard_key_text(key),
            ", ".join(f"({', '.join(fields)})" for fields in unique_indexes(name)) or "`_id` only",
        )
        for name, key in SHARD_KEYS.items()
    }
    assert documented == declared
