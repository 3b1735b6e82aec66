from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.ids import id_timestamp_ms, new_id
from apps.core.settings import Settings, SettingsError
from apps.core.topology import Topology


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(min_value=0, max_value=2**48 - 2))
def test_ids_sort_by_creation_time(a: int, b: int) -> None:
    first, second = sorted((a, b))
    if first == second:
        second += 1
    assert new_id(first) < new_id(second)
    assert id_timestamp_ms(new_id(first)) == first


def test_ids_are_unique_within_one_millisecond() -> None:
    ids = {new_id(1_700_000_000_000) for _ in range(10_000)}
    assert len(ids) == 10_000


def test_settings_read_the_environment_with_types() -> None:
    settings = Settings.from_env(
        {
            "NATS_URL": "nats://x:1",
            "API_PORT": "9001",
            "DATA_DIR": "/tmp/copier-x",
            "SIGNAL_VALIDITY_SECONDS": "2.5",
        }
    )
    assert settings.nats_url == "nats://x:1"
    assert settings.api_port == 9001
    assert settings.data_dir == Path("/tmp/copier-x")
    assert settings.signal_validity_seconds == 2.5


def test_settings_defaults_point_at_the_embedded_stack() -> None:
    settings = Settings.from_env({})
    assert settings.api_port == 8000
    assert settings.nats_url == "nats://127.0.0.1:4222"


def test_default_browser_origins_follow_the_api_port() -> None:
    moved = Settings.from_env({"API_PORT": "18000"})
    assert moved.allowed_origins == [
        "http://127.0.0.1:18000",
        "http://localhost:18000",
        "http://localhost:5173",
    ]
    assert "http://127.0.0.1:8000" in Settings.from_env({}).allowed_origins
    explicit = Settings.from_env({"API_PORT": "18000", "CORS_ORIGINS": "https://a.example, "})
    assert explicit.allowed_origins == ["https://a.example"]


def test_a_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="API_PORT='eighty'"):
        Settings.from_env({"API_PORT": "eighty"})


def test_topology_namespaces_streams_subjects_and_keys() -> None:
    plain, scoped = Topology(), Topology("t1")
    assert plain.stream("SIGNALS") == "SIGNALS"
    assert plain.signal_subject("c1") == "signals.c1"
    assert scoped.stream("SIGNALS") == "t1_SIGNALS"
    assert scoped.order_subject("deriv", 3) == "t1.orders.deriv.3"
    assert scoped.key("routing", "c1") == "t1:routing:c1"


def test_a_missing_server_binary_names_the_fix() -> None:
    from apps.core.embedded import EmbeddedError, find_binary

    with pytest.raises(EmbeddedError, match=r"no-such-server not found — install .*uv sync"):
        find_binary("no-such-server")
