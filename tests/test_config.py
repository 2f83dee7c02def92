"""Configuration is validated once, at start-up, with messages that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from starling.config import ConfigError, load_settings

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URL", "TOKEN_SECRET")}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"timeline_max": 0}, "TIMELINE_MAX"),
        ({"fanout_batch_size": -5}, "FANOUT_BATCH_SIZE"),
        ({"port": 70_000}, "PORT"),
        ({"public_url": "starling.example"}, "PUBLIC_URL"),
        ({"redis_url": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"mongodb_url": "localhost:27017"}, "MONGODB_URL"),
        ({"log_level": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_an_invalid_setting_is_a_config_error_naming_its_variable(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**overrides)


def test_settings_are_normalised() -> None:
    settings = load_settings(log_level="debug", public_url="https://starling.example/")
    assert settings.log_level == "DEBUG"
    assert settings.public_url == "https://starling.example"


def _starling(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starling.cli", *args],
        env={**CLEAN_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_refuses_a_bad_configuration_with_a_message_not_a_traceback() -> None:
    result = _starling("dev", TIMELINE_MAX="0")
    assert result.returncode != 0
    assert "TIMELINE_MAX" in result.stderr and "Traceback" not in result.stderr


def test_serve_and_worker_say_which_settings_they_need() -> None:
    for command in ("serve", "worker"):
        result = _starling(command)
        assert result.returncode != 0
        assert "MONGODB_URL, REDIS_URL, TOKEN_SECRET" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_settings_updated_in_code_are_validated_like_the_environment() -> None:
    settings = load_settings()
    assert settings.updated(public_url="http://127.0.0.1:9000/").public_url == "http://127.0.0.1:9000"
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        settings.updated(public_url="ftp://nowhere")
    with pytest.raises(ConfigError, match="TIMELINE_MAX"):
        settings.updated(timeline_max=0)
