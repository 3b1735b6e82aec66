"""Request and response bodies of /api/v1/auth and /api/v1/me."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from apps.api.text import check_plain_text

Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
# Argon2 hashes anything, but megabyte passwords are a CPU denial of service.
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=256)]
AnyPassword = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class RegisterRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: NewPassword
    display_name: DisplayName
    account_type: Literal["provider", "subscriber"]

    def __post_init__(self) -> None:
        check_plain_text("email", self.email)
        check_plain_text("display_name", self.display_name)


class LoginRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: AnyPassword


class RefreshRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Non-browser clients send the refresh token here; browsers rely on the cookie."""

    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class UserView(msgspec.Struct, kw_only=True):
    id: str
    email: str
    display_name: str
    account_type: Literal["provider", "subscriber"]
    is_admin: bool
    created_at: datetime
