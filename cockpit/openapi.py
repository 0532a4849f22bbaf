"""The OpenAPI 3.1 document of the REST API, generated from the endpoint declarations.

Schemas come from the same pydantic models that validate requests and serialise answers;
paths, parameters, bodies, answers and the error statuses each endpoint can give come from
its :class:`~cockpit.endpoint.Endpoint`. Nothing is written twice, so the document matches
what is served (a test walks every path and a property-based test calls them).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from cockpit.endpoint import Endpoint
from cockpit.models import ErrorOut
from strom_core.ids import CHARGER_ID_PATTERN

__all__ = ["API_PREFIX", "openapi_document"]

API_PREFIX = "/api/v1"
_REF = "#/components/schemas/{model}"
_INTEGER_PARAMS = {"connector_id"}
_CHARGER_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{CHARGER_ID_PATTERN}$"}
_ERRORS = {
    "400": "Bad input (the message says which field and why)",
    "401": "Missing, unknown, revoked, stale or replayed credentials",
    "403": "Valid credentials without this right",
    "404": "No such charger, connector, session, partner or receivable",
    "409": "Not possible in the current state",
    "413": "Body larger than 64 KiB",
    "502": "A roaming partner did not answer as OCPI requires (the message says which step)",
    "503": (
        "The database, the relays, the charger's agent or the lightning node are unavailable; "
        "try again"
    ),
}


def _models(endpoints: list[Endpoint]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorOut": ErrorOut}
    for endpoint in endpoints:
        for model in (endpoint.response, endpoint.body):
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = dict(field_schema)
        description = field_schema.pop("title", None)
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": field_schema,
                **({"description": description} if description else {}),
            }
        )
    return parameters


def _path_schema(name: str) -> dict[str, Any]:
    if name in _INTEGER_PARAMS:
        return {"type": "integer", "minimum": 1, "maximum": 99}
    if name == "charger_id":
        return _CHARGER_ID_SCHEMA
    if name in ("partner_id", "receivable_id"):
        return {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
    if name == "serial":  # a certificate's serial number, hexadecimal
        return {"type": "string", "pattern": "^[0-9A-Fa-f]{1,40}$"}
    return {"type": "string", "minLength": 1, "maxLength": 48}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _path_schema(name),
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}},
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media in endpoint.media:
        if media == "application/json" and endpoint.response is not None:
            content[media] = {"schema": {"$ref": _REF.format(model=endpoint.response.__name__)}}
        elif media == "text/csv":
            content[media] = {"schema": {"type": "string"}}
        else:
            content[media] = {"schema": {"type": "string", "format": "binary"}}
    responses: dict[str, Any] = {"200": {"description": "Success", "content": content}}
    errors = ["400", "401", "403", "413", "503"]
    if endpoint.not_found and "{" in endpoint.path:
        errors.append("404")
    if endpoint.conflict or endpoint.action in ("tariff.set",):
        errors.append("409")
    if endpoint.action in ("ocpi.create", "ocpi.register", "ocpi.rotate", "ocpi.delete"):
        errors.append("502")
    for status in sorted(errors):
        responses[status] = _error(_ERRORS[status])
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id or endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _path_parameters(endpoint.path)
        + (_query_parameters(endpoint.query) if endpoint.query else []),
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=endpoint.body.__name__)}}
            },
        }
    if endpoint.action is not None:
        operation["description"] = (
            f"Changes something: needs an admin token or an admin's NIP-98 event; written to "
            f"the audit log as `api.{endpoint.action}`."
        )
    return operation


def openapi_document(endpoints: list[Endpoint], server_url: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of ``endpoints`` served below ``server_url`` + ``/api/v1``."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    _, definitions = models_json_schema(
        [(model, "validation") for model in _models(endpoints)], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Strom operator API",
            "version": version,
            "description": (
                "Run charge points that sell charging for Bitcoin. Authenticate with an API "
                "token (`Authorization: Bearer strom_…`, made by `strom token create`) or a "
                "NIP-98 event signed by an admin npub (`Authorization: Nostr <base64>`). "
                "Money is integer msat, energy integer Wh."
            ),
        },
        "servers": [{"url": server_url.rstrip("/") + API_PREFIX}],
        "security": [{"token": []}, {"nip98": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "strom_…"},
                "nip98": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Nostr <base64 of a kind-27235 event>` (NIP-98)",
                },
            },
        },
    }
