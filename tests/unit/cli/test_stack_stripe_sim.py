"""`copier up` starts the Stripe stand-in when payments go to it (no process is started)."""

from __future__ import annotations

from pathlib import Path

from apps.core.settings import Settings
from cli.stack import build_children


def test_the_stripe_stand_in_runs_on_its_port_before_the_api(tmp_path: Path) -> None:
    settings = Settings.from_env({"STRIPE_SIM_PORT": "18703"}, data_dir=tmp_path)
    names = [c.spec.name for c in build_children(settings)]
    spec = next(c.spec for c in build_children(settings) if c.spec.name == "sim-stripe")
    assert spec.argv[-3:] == ["apps.payments.stripe_sim", "--port", "18703"]
    assert spec.ports == (18703,)
    assert names.index("sim-stripe") < names.index("api")
    # The API and the stand-in find the same development keys in DATA_DIR.
    assert spec.env["DATA_DIR"] == str(tmp_path)


def test_no_stand_in_with_payments_off_or_with_a_real_stripe(tmp_path: Path) -> None:
    for env in ({"PAYMENTS": "off"}, {"STRIPE_API_URL": "https://api.stripe.com"}):
        names = [c.spec.name for c in build_children(Settings.from_env(env, data_dir=tmp_path))]
        assert "sim-stripe" not in names, env
