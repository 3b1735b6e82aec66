"""The OpenAPI document at /schema is what the API does.

Schemathesis reads the document from the live API (uvicorn on the real servers), sends
generated requests, valid ones and invalid ones, to every operation with a real access
token (and the caller's own channel wherever a channel id goes), and checks that no
answer is a 5xx, that every status is one the document lists for that operation and that
every body matches the document's schema for it (the one error body included). Examples
per operation are bounded so that the run takes a minute or two.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.live_api import Api, ApiServer, User

EXAMPLES_PER_OPERATION = 25


@dataclass(frozen=True)
class Caller:
    """A provider with a channel of their own: generated requests reach past 401 and 404."""

    user: User
    channel_id: str


@pytest.fixture
def api_schema(api_server: ApiServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_server.url}/schema/openapi.json")


@pytest.fixture
async def caller(http: Api) -> Caller:
    user = await http.user("provider", "fuzz")
    return Caller(user, await http.channel(user, "Fuzzed", price="1", days=7))


@pytest.mark.schemathesis
@pytest.mark.timeout(600)  # about 30 s on an idle machine; the suite's 120 s is too tight when busy
def test_every_answer_is_documented_and_none_is_a_server_error(
    api_schema: schemathesis.BaseSchema, caller: Caller
) -> None:
    # The operations one by one under plain Hypothesis: schemathesis's own pytest
    # wrapper (``from_fixture``) relies on a pytest internal that pytest 9.2 renamed.
    failures: dict[str, str] = {}
    # Deletions (of the caller's channel) and then the logouts (of the caller's session) go
    # last: before them, the rest would stop at 404 and 401.
    operations = sorted(
        (result.ok() for result in api_schema.get_all_operations()),
        key=lambda op: (op.path.startswith("/api/v1/auth/logout"), op.method.upper() == "DELETE"),
    )
    assert len(operations) >= 28
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.generate],  # no shrinking: each example is a real request
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_as_documented(case: schemathesis.Case) -> None:
            if "channel_id" in case.path_parameters:
                case.path_parameters["channel_id"] = caller.channel_id
            case.call_and_validate(
                headers=caller.user.headers,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )

        try:
            answers_as_documented()
        except Unsatisfiable:
            continue  # no invalid request fits this operation's schema
        except (AssertionError, BaseExceptionGroup) as exc:  # what the checks raise
            failures[f"{operation.label} ({mode})"] = str(exc)
    assert failures == {}
