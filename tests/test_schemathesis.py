"""The OpenAPI document against the real API (issue 16, finding 16): schemathesis calls every operation through the
WSGI app with a real tenant's key and checks that no answer is a 5xx and every answer is documented — its status,
its content type, its body and headers. A bounded run: a fixed number of examples per operation, derandomized, so
that `make test` stays a few minutes and gives the same verdict every time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from stores.models import Store
from tenants import services
from tenants.audit import Actor
from tenants.models import Tenant

EXAMPLES_PER_OPERATION = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]

_document = OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
schema = schemathesis.openapi.from_dict(orjson.loads(_document))  # as /api/v1/schema/?format=json serves it


app = WSGIHandler()  # Django's WSGI app, as gunicorn runs it


@pytest.fixture(autouse=True)
def _connection_kept() -> Iterator[None]:
    """Requests do not close the database connection (that would end the test's transaction), as in Django's own
    test client."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def store_s1(make_store_with_layout: Callable[..., Store], tenant_a: Tenant) -> Store:
    return make_store_with_layout(tenant_a, code="S1")


@pytest.fixture
def key(tenant_a: Tenant) -> services.IssuedApiKey:
    return services.api_key_issue(actor=Actor.system(), tenant=tenant_a, name="schemathesis")


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented(case: Any, key: services.IssuedApiKey, store_s1: Store, localstripe: Any) -> None:
    if "store" in case.path_parameters:
        case.path_parameters["store"] = store_s1.code
    if case.path_parameters.get("key_id") == key.api_key.pk:  # revoking the key under test would end the run
        case.path_parameters["key_id"] = 0
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {key.key}"}, checks=CHECKS)
