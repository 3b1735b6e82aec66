"""What the OpenAPI document at /schema promises: the real error body, every status a
route can answer, which routes need a token, and how money is written.

Each route handler names the errors its own logic raises (``responses=errors(404, 409)``);
:func:`document_routes` adds, from the handler's signature, what every route shares: 400
(bad parameters or body) and 503 (a dependency down) everywhere, 413 where a body is
read, 401 and the bearer-token requirement where the handler takes the caller's token
(``principal`` or ``claims``). A handler that takes neither is public and carries no
security requirement.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute
from litestar.typing import FieldDefinition

from apps.api.errors import RETRY_AFTER_SECONDS, ErrorBody
from apps.api.money import CANONICAL, RULE, Money

BEARER = "BearerToken"
_WHY = {
    400: "The parameters or the body are malformed or invalid (details name the field).",
    401: "No valid access token (or, on login and refresh, wrong credentials).",
    402: "The channel's plan is paid: subscribe through its checkout.",
    403: "The caller may not do this.",
    404: "No such resource, or none the caller may see.",
    409: "Conflicts with the current state (already exists, in use).",
    413: "The body is larger than 64 KiB.",
    429: "Too many attempts; wait a minute.",
    502: "The broker or the payment provider did not answer or refused.",
    503: f"A service the API depends on is not answering; retry after the Retry-After "
    f"header's seconds ({RETRY_AFTER_SECONDS}).",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error answers ``statuses``, all in the one error body."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=_WHY.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in statuses
    }


def _takes_token(handler: HTTPRouteHandler) -> bool:
    return not {"principal", "claims"}.isdisjoint(handler.parsed_fn_signature.parameters)


def document_routes(app: Litestar) -> None:
    """Complete every schema route's error answers and security (see the module docstring)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            shared = [400, 503]
            if handler.parsed_data_field is not None:
                shared.append(413)
            if _takes_token(handler):
                shared.append(401)
                handler.security = [{BEARER: []}]
            handler.responses = {**errors(*shared), **(handler.responses or {})}


class MoneySchema(OpenAPISchemaPlugin):
    """Money fields (:data:`apps.api.money.Money`): a JSON number or a canonical string."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Money

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(
            one_of=[
                Schema(type=OpenAPIType.NUMBER, minimum=0),
                Schema(type=OpenAPIType.STRING, pattern=CANONICAL),
            ],
            description=f"An amount: {RULE}.",
            examples=["10.5"],
        )


openapi_config = OpenAPIConfig(
    title="Cloud Trade Copier API",
    version="1",
    description=(
        'Every 4xx and 5xx answer has the body `{"error": {"code", "message", '
        '"details"}}`. Integers are JSON integers only; amounts are '
        f"{RULE}. Routes without a security requirement are public."
    ),
    components=Components(
        security_schemes={BEARER: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
    ),
)
