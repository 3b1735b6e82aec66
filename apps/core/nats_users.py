"""The NATS users of `nats/auth.conf` and their passwords for the embedded cluster.

`nats/auth.conf` names one user per service (plus `sys`, the servers' own account for
`nats server ...`) and reads each password from ``NATS_<USER>_PASSWORD``. For
`copier up --cluster` the passwords are generated once into ``DATA_DIR/nats-passwords.json``
(mode 0600, never world-readable) and kept across restarts, like the development JWT key;
a deployment sets the variables from its secret store instead.

Generated passwords are letters and digits and start with a letter: nats-server reads an
environment value that starts with a digit as a number and refuses the configuration.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path

from apps.core.dev_keys import load_or_create

# The services' users, as nats/auth.conf names them.
SERVICE_USERS = (
    "api",
    "router",
    "worker-deriv",
    "worker-iqoption",
    "ledger",
    "notifier",
    "ops",
    "admin",
)
# The system account's user (nats/auth.conf `SYS`): `nats server report|ls|check`.
SYSTEM_USER = "sys"
ALL_USERS = (*SERVICE_USERS, SYSTEM_USER)

PASSWORDS_FILE = "nats-passwords.json"
_PASSWORD_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits


def password_variable(user: str) -> str:
    """The environment variable nats/auth.conf reads the user's password from:
    ``"worker-deriv"`` → ``"NATS_WORKER_DERIV_PASSWORD"``."""
    return f"NATS_{user.upper().replace('-', '_')}_PASSWORD"


def new_password() -> str:
    """A random password nats-server's configuration parser reads as a string."""
    first = secrets.choice(string.ascii_letters)
    return first + "".join(secrets.choice(_ALPHABET) for _ in range(_PASSWORD_LENGTH - 1))


def ensure_passwords(data_dir: Path) -> dict[str, str]:
    """Every user's password (``ALL_USERS``), generated into ``data_dir`` the first time and
    read back afterwards; a user missing from an older file gets one added."""
    path = data_dir / PASSWORDS_FILE

    def create() -> bytes:
        return _encode({user: new_password() for user in ALL_USERS})

    passwords: dict[str, str] = json.loads(load_or_create(path, create, "NATS password file"))
    missing = [user for user in ALL_USERS if not passwords.get(user)]
    if missing:
        passwords |= {user: new_password() for user in missing}
        _replace(path, _encode(passwords))
    return {user: passwords[user] for user in ALL_USERS}


def server_env(passwords: dict[str, str]) -> dict[str, str]:
    """The ``NATS_*_PASSWORD`` variables that nats/auth.conf's ``$VAR``s resolve from."""
    return {password_variable(user): password for user, password in passwords.items()}


def _encode(passwords: dict[str, str]) -> bytes:
    return json.dumps(passwords, indent=2, sort_keys=True).encode() + b"\n"


def _replace(path: Path, data: bytes) -> None:
    # Created 0600 under a private name, then renamed over the old file: readers see the
    # old or the new file whole, and the secret is never world-readable.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
