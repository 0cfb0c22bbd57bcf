"""Settings: every layer parsed strictly, and a bad value is one line naming the setting and its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.config import Settings, SettingsError, load_settings, parse_bool, parse_size


@pytest.mark.parametrize("word", ["true", "TRUE", "True", "1", "yes", "YES", "on", " true "])
def test_true_words(word: str) -> None:
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "No", "off"])
def test_false_words(word: str) -> None:
    assert parse_bool(word) is False


@pytest.mark.parametrize("word", ["", "2", "maybe", "truthy", 2, 1.0, None])
def test_anything_else_is_not_a_boolean(word: object) -> None:
    with pytest.raises(Exception, match="is not a boolean"):
        parse_bool(word)


@pytest.mark.parametrize(("text", "size"), [
    ("0", 0), (123, 123), ("4096", 4096), ("50MB", 50_000_000), ("50 MB", 50_000_000), ("1GiB", 2**30),
    ("2gb", 2_000_000_000), ("512KiB", 512 * 1024), ("1k", 1024), ("3M", 3 * 2**20), ("7B", 7), ("1_000", 1000),
    ("1.5GB", 1_500_000_000), ("0.5KiB", 512),
])
def test_sizes_take_units(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "1.5", "1.0001kB", "5 XB", "ten", "1.2.3MB", True, 1.0])
def test_a_size_without_a_number_or_with_an_unknown_unit_is_refused(text: object) -> None:
    with pytest.raises(Exception, match="is not a size"):
        parse_size(text)


def test_environment_values_become_typed_settings() -> None:
    settings = load_settings(environ={
        "LEVERET_PORT": "5673", "LEVERET_SEND_TIMEOUT": "2.5", "LEVERET_MEMORY_BUDGET": "2GiB",
        "LEVERET_LOOPBACK_USERS": "guest, admin", "LEVERET_LOG_LEVEL": "debug",
        "LEVERET_MEMORY_HIGH_WATERMARK": "512MiB",
    })
    assert settings.memory_high_watermark == "512MiB"
    assert settings.port == 5673 and isinstance(settings.port, int)
    assert settings.send_timeout == 2.5
    assert settings.memory_budget == 2 * 2**30
    assert settings.loopback_users == ("guest", "admin")
    assert settings.log_level == "DEBUG"


def test_layers_in_order_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "leveret.toml"
    config.write_text('port = 1000\nheartbeat = 5\ndisk-free-limit = "1MB"\nloopback_users = ["a", "b"]\n')
    settings = load_settings(config, environ={"LEVERET_PORT": "2000", "LEVERET_HEARTBEAT": "6"},
                             overrides={"port": 3000, "host": None})
    assert (settings.port, settings.heartbeat, settings.disk_free_limit) == (3000, 6, 1_000_000)
    assert settings.loopback_users == ("a", "b") and settings.host == Settings.host


@pytest.mark.parametrize(("environ", "message"), [
    ({"LEVERET_PORT": "abc"},
     "Invalid value for port (environment variable LEVERET_PORT): 'abc' is not an integer"),
    ({"LEVERET_PORT": "70000"},
     "Invalid value for port (environment variable LEVERET_PORT): '70000' is above the maximum 65535"),
    ({"LEVERET_PORT": "-1"},  # negative is amqps only, and the amqps listener is off
     "Invalid value for port (ssl_port is off): negative turns off the only AMQP listener"),
    ({"LEVERET_FRAME_MAX": "100"},
     "Invalid value for frame_max (environment variable LEVERET_FRAME_MAX): '100' is below the minimum 4096"),
    ({"LEVERET_CHANNEL_MAX": "0"},
     "Invalid value for channel_max (environment variable LEVERET_CHANNEL_MAX): '0' is below the minimum 1"),
    ({"LEVERET_HEARTBEAT": "1.5"},
     "Invalid value for heartbeat (environment variable LEVERET_HEARTBEAT): '1.5' is not an integer"),
    ({"LEVERET_HANDSHAKE_TIMEOUT": "nan"},
     "Invalid value for handshake_timeout (environment variable LEVERET_HANDSHAKE_TIMEOUT): 'nan' is not a finite"),
    ({"LEVERET_SEND_TIMEOUT": "soon"},
     "Invalid value for send_timeout (environment variable LEVERET_SEND_TIMEOUT): 'soon' is not a number"),
    ({"LEVERET_MEMORY_BUDGET": "lots"},
     "Invalid value for memory_budget (environment variable LEVERET_MEMORY_BUDGET): 'lots' is not a size"),
    ({"LEVERET_MEMORY_HIGH_WATERMARK": "0"}, "Invalid value for memory_high_watermark (environment variable "
     "LEVERET_MEMORY_HIGH_WATERMARK): '0' is not a fraction of RAM above 0 nor an amount of bytes"),
    ({"LEVERET_MEMORY_HIGH_WATERMARK": "half"}, "Invalid value for memory_high_watermark (environment variable "
     "LEVERET_MEMORY_HIGH_WATERMARK): 'half' is not a size"),
    ({"LEVERET_LOG_LEVEL": "loud"},
     "Invalid value for log_level (environment variable LEVERET_LOG_LEVEL): 'loud' is not one of DEBUG"),
])
def test_a_bad_environment_value_names_the_setting_and_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("toml", "message"), [
    ("port = \"x\"\n", "Invalid value for port (file {path}, key port): 'x' is not an integer"),
    ("port = true\n", "Invalid value for port (file {path}, key port): True is not an integer"),
    ("heartbeat = 1.5\n", "Invalid value for heartbeat (file {path}, key heartbeat): 1.5 is not an integer"),
    ("host = 5\n", "Invalid value for host (file {path}, key host): 5 is not a string"),
    ("loopback_users = [1]\n", "Invalid value for loopback_users (file {path}, key loopback_users): [1] is not a list"),
    ("colour = \"red\"\n", "Invalid value for colour (file {path}): no such setting"),
    ("port = \n", "Invalid value for --config (file {path}): not valid TOML"),
])
def test_a_bad_file_value_names_the_setting_and_file(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "leveret.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ={})
    assert str(caught.value).startswith(message.format(path=config))


def test_flags_are_checked_too() -> None:
    with pytest.raises(SettingsError, match=r"^Invalid value for http_port \(flag --http-port\): 70000 is above"):
        load_settings(environ={}, overrides={"http_port": 70000})


def test_serve_with_a_bad_setting_prints_one_line_and_exits_2_as_click_does_for_a_bad_option(tmp_path: Path) -> None:
    # In process first (CliRunner), then as a real process to be sure no traceback reaches stderr.
    result = CliRunner().invoke(main, ["serve", "--port", "99999", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: Invalid value for port (flag --port): 99999 is above the maximum 65535"]
    bad_option = CliRunner().invoke(main, ["serve", "--port", "x"])
    assert bad_option.exit_code == 2 and bad_option.output.splitlines()[-1].startswith("Error: Invalid value for")
    process = subprocess.run(
        [sys.executable, "-m", "leveret", "serve", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env={"LEVERET_HEARTBEAT": "often", "PATH": ""},
    )
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        "Error: Invalid value for heartbeat (environment variable LEVERET_HEARTBEAT): 'often' is not an integer"]


def test_an_embedded_broker_checks_its_settings_too() -> None:
    from leveret.embedded import EmbeddedBroker

    with pytest.raises(SettingsError, match=r"^Invalid value for heartbeat \(embedded broker argument\): -1 is below"):
        EmbeddedBroker(heartbeat=-1)
    with pytest.raises(SettingsError, match=r"^Invalid value for colour \(embedded broker argument\): no such setting"):
        EmbeddedBroker(colour="red")


def test_a_config_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(SettingsError, match=r"^Invalid value for --config \(file .*nowhere.toml\): cannot read it: No such"):
        load_settings(missing, environ={})
