"""Schemathesis against a live `tre serve`, as a researcher, a checker, an admin and
anonymously: whatever it sends, no answer is a 5xx or a status the OpenAPI description
does not list for that operation, every answer fits its documented body, nothing
outside the schema is accepted, and nothing but the health check answers without a
token.

The requests come from the description `tre serve` gives at /openapi.json (built here
without a home, and checked against the served one), in Schemathesis's three phases:
the description's examples, its coverage cases (boundary values, missing and wrong
fields, methods the path does not take) and `EXAMPLES` fuzzed requests per operation,
from a fixed seed, so a run sends the same requests each time.

Each caller gets its own copy of the world (tests/web/conftest.py) and its own server,
so what the admin's requests change (roles, projects) does not steer the others'.

Why not `schemathesis.openapi.from_url` on the live server through
`schemathesis.pytest.from_fixture`: that loader sets `Function._nodeid`, which pytest
9.2 no longer has. `schema.parametrize()` on the description itself works, and the
`served` fixture checks the server gives the same description.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.web.conftest import World, tre_serve
from tre.web.app import describe_api

pytestmark = [pytest.mark.slow]

#: Who calls: a researcher in the project, a checker, an admin, and nobody (no token).
CALLERS = {"researcher": "rita", "checker": "carl", "admin": "ada", "anonymous": None}
#: Fuzzed requests per operation (25 operations), beside the examples and coverage cases.
EXAMPLES = 15
SEED = 23
#: A server error; a status, content type, header or body the description does not
#: document; a request outside the schema that is not refused; a method the path does
#: not take answered other than 405 with the methods it does take; an operation that
#: answers without its token.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]

schema = schemathesis.openapi.from_dict(
    describe_api(),
    config=schemathesis.Config.from_dict(
        {"seed": SEED, "phases": {"stateful": {"enabled": False}}}
    ),
)


@dataclass
class Tally:
    """What one caller's run sent and got back."""

    caller: str
    statuses: Counter[int] = field(default_factory=Counter)
    undocumented: Counter[str] = field(default_factory=Counter)

    def record(self, case: schemathesis.Case, status: int) -> None:
        """Count one answer, and whether its status is documented for its operation."""
        self.statuses[status] += 1
        documented = case.operation.responses.status_codes
        unsupported = case.method.lower() not in schema.raw_schema["paths"][case.path]
        if str(status) not in documented and not (unsupported and status == 405):
            self.undocumented[f"{case.operation.label} -> {status}"] += 1

    def line(self) -> str:
        """The tally as one line."""
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        return (
            f"{self.caller}: {sum(self.statuses.values())} requests, "
            f"statuses {dict(sorted(self.statuses.items()))}, {server_errors} 5xx, "
            f"{sum(self.undocumented.values())} undocumented {dict(self.undocumented)}"
        )


@dataclass
class Served:
    """One caller's server: its URL, the caller's token (None: anonymous), the tally."""

    url: str
    token: str | None
    tally: Tally


@pytest.fixture(scope="module", params=list(CALLERS))
def served(
    request: pytest.FixtureRequest,
    template_world: World,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """A fresh copy of the world behind its own `tre serve`, for one caller."""
    caller = str(request.param)
    root = tmp_path_factory.mktemp(f"fuzz-{caller}")
    shutil.copytree(template_world.home, root / "home")
    who = CALLERS[caller]
    with tre_serve(root / "home", root / "serve.log") as (url, _):
        # The requests are generated from the description this server gives.
        assert httpx.get(f"{url}/openapi.json").json() == schema.raw_schema
        this = Served(url, template_world.tokens[who] if who else None, Tally(caller))
        yield this
    print(f"fuzz tally, {this.tally.line()}")  # docs/service.md, 'Fuzzing', quotes these
    if who is not None:  # the requests reached the service, not only its refusals
        assert any(200 <= status < 300 for status in this.tally.statuses), this.tally.line()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented(case: schemathesis.Case, served: Served) -> None:
    token = {}
    if served.token is not None:
        if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
            return  # a request with a broken token is the anonymous caller's to send
        # Sent as the caller's own header, so `ignored_auth` knows it for a real token
        # (and sends the request again without it, to see it refused).
        token = {"Authorization": f"Bearer {served.token}"}
    response = case.call_and_validate(base_url=served.url, headers=token, checks=CHECKS)
    served.tally.record(case, response.status_code)
    if served.token is None and case.path != "/api/health":
        # The token is checked before anything else is read: nobody learns the body's
        # fields, or whether a job or project exists. (404: a path that matched no
        # route, e.g. a name with a '/' in it; 405: a method the path does not take.)
        assert response.status_code in (401, 404, 405), response.text[:300]
