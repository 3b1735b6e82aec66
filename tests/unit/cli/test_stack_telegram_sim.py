"""`copier up` starts the Telegram stand-in when no bot token is set, and points the
notifier at it (no process is started)."""

from __future__ import annotations

from pathlib import Path

from apps.core.settings import Settings
from apps.notifier.telegram_sim.server import DEV_TOKEN
from cli.stack import build_children


def test_without_a_token_the_notifier_talks_to_the_stand_in(tmp_path: Path) -> None:
    settings = Settings.from_env({"TELEGRAM_SIM_PORT": "18704"}, data_dir=tmp_path)
    children = {c.spec.name: c.spec for c in build_children(settings)}
    names = list(children)
    sim = children["sim-telegram"]
    assert sim.argv[-3:] == ["apps.notifier.telegram_sim", "--port", "18704"]
    assert names.index("sim-telegram") < names.index("notifier")
    notifier = children["notifier"]
    assert notifier.env["TELEGRAM_API_URL"] == "http://127.0.0.1:18704"
    assert notifier.env["TELEGRAM_BOT_TOKEN"] == sim.env["TELEGRAM_BOT_TOKEN"] == DEV_TOKEN


def test_a_real_bot_token_starts_no_stand_in(tmp_path: Path) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "123:real"}
    children = {
        c.spec.name: c.spec for c in build_children(Settings.from_env(env, data_dir=tmp_path))
    }
    assert "sim-telegram" not in children
    assert children["notifier"].env["TELEGRAM_API_URL"] == "https://api.telegram.org"
