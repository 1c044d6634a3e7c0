"""A small declarative layer for our JSON APIs (the admin API, the device API):
each operation is a Flask route whose query, body and response are pydantic
models, and the OpenAPI 3.1 document is generated from the same declarations.

Pydantic's JSON Schema is draft 2020-12, the dialect of OpenAPI 3.1, so the
model schemas go into ``components/schemas`` unchanged. A request is parsed
with the models the document names and a response is written through them:
what the document says is what the code does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar, get_origin

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

from .errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])

REF = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"{(\w+)}")
BEARER_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "RFC 6750 §3: the Bearer challenge, with the error code.",
        "schema": {"type": "string"},
    }
}


class Error(BaseModel):
    """The one error object of our APIs (RFC 6749 §5.2 / RFC 6750 §3 style;
    ``idp.errors``)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    error: str = Field(description="A code: invalid_request, invalid_token, not_found, ...")
    error_description: str = Field(description="For people; never internal detail.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="With invalid_request: what is wrong with each field sent.",
    )


class InvalidInput(InvalidRequest):
    """A request's query or body does not fit its model; ``fields`` says why."""

    message = "Some fields are not valid."

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields=fields)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template, relative to the API's base: /clients/{client_id}
    operation_id: str
    summary: str
    tag: str
    status: int = 200
    response: type[BaseModel] | None = None  # None: no body
    media_type: str = "application/json"
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    public: bool = False
    description: str = ""
    errors: tuple[int, ...] = ()
    # Other successful answers: (status, response model), as ``Answer``.
    also: tuple[tuple[int, type[BaseModel]], ...] = ()

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM.findall(self.path)

    @property
    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.query or self.body or self.path_params:
            statuses.add(400)
        if not self.public:
            statuses |= {401, 403}
        if self.path_params:
            statuses.add(404)
        return sorted(statuses)


def _field_errors(exc: ValidationError, where: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or where
        fields.setdefault(name, error["msg"])
    return fields


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in request.args:
            is_list = get_origin(info.annotation) is list
            data[key] = request.args.getlist(key) if is_list else request.args[key]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_field_errors(exc, "query")) from None


def parse_body(model: type[BaseModel], *, required: bool) -> BaseModel:
    raw = request.get_data(cache=False)
    if not raw.strip() and not required:
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(_field_errors(exc, "body")) from None


@dataclass(frozen=True)
class Answer:
    """A view's answer with another status than the operation's (declared in
    its ``also``)."""

    body: BaseModel
    status: int


@dataclass
class Api:
    """The operations of one JSON API on a blueprint, and their document.

    ``security_schemes`` makes the document's ``components/securitySchemes``
    from what ``document`` is given besides the server URL; ``security`` is
    what every operation not declared ``public`` needs; ``challenge``: a 401
    or 403 carries an RFC 6750 ``WWW-Authenticate`` challenge.
    """

    blueprint: Blueprint
    title: str
    version: str
    security_schemes: Callable[..., dict[str, Any]]
    security: list[dict[str, list[str]]]
    description: str = ""
    challenge: bool = True
    operations: list[Operation] = field(default_factory=list)

    def operation(self, method: str, path: str, **options: Any) -> Callable[[F], F]:
        """Register ``view`` for ``method path``. It is called with the path
        parameters, ``query=`` and ``body=`` (parsed models) when declared,
        and returns the response model (or data for it), None for an empty
        response, or a ready Flask ``Response``."""

        def decorator(view: F) -> F:
            op = Operation(
                method=method.upper(),
                path=path,
                operation_id=view.__name__,
                summary=options.pop("summary", (view.__doc__ or "").strip().split("\n")[0]),
                **options,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def endpoint(**path_params: str) -> Response:
                kwargs: dict[str, Any] = dict(path_params)
                if op.query is not None:
                    kwargs["query"] = parse_query(op.query)
                if op.body is not None:
                    kwargs["body"] = parse_body(op.body, required=op.body_required)
                return self._respond(op, view(**kwargs))

            self.blueprint.add_url_rule(
                PATH_PARAM.sub(r"<\1>", path),
                endpoint=op.operation_id,
                view_func=endpoint,
                methods=[op.method],
            )
            return view

        return decorator

    @staticmethod
    def _respond(op: Operation, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, Answer):
            response = jsonify(result.body.model_dump(mode="json"))
            response.status_code = result.status
            return response
        if op.response is None:
            return Response(status=op.status)
        model = result if isinstance(result, op.response) else op.response.model_validate(result)
        response = jsonify(model.model_dump(mode="json"))
        response.status_code = op.status
        return response

    # --- the OpenAPI document --------------------------------------------------------

    def document(self, *, server_url: str, **context: str) -> dict[str, Any]:
        """The OpenAPI 3.1 document; ``context`` goes to ``security_schemes``."""
        wanted: list[tuple[type[BaseModel], Any]] = [(Error, "serialization")]
        for op in self.operations:
            if op.body is not None:
                wanted.append((op.body, "validation"))
            if op.response is not None:
                wanted.append((op.response, "serialization"))
            wanted += [(model, "serialization") for _status, model in op.also]
        refs, definitions = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
        ref: dict[Any, str] = {model: schema["$ref"] for (model, _mode), schema in refs.items()}
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(
                op, ref, challenge=self.challenge
            )
        return {
            "openapi": "3.1.0",
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "servers": [{"url": server_url}],
            "security": self.security,
            "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in self.operations)],
            "paths": paths,
            "components": {
                "schemas": definitions.get("$defs", {}),
                "securitySchemes": self.security_schemes(**context),
            },
        }


def _operation(op: Operation, ref: dict[Any, str], *, challenge: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        item["description"] = op.description
    if op.public:
        item["security"] = []
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
        }
        for name in op.path_params
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if parameters:
        item["parameters"] = parameters
    if op.body is not None:
        item["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": {"$ref": ref[op.body]}}},
        }
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        success["content"] = {op.media_type: {"schema": {"$ref": ref[op.response]}}}
    elif op.media_type != "application/json":
        success["content"] = {op.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success}
    for status, model in op.also:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": {"$ref": ref[model]}}},
        }
    for status in op.error_statuses:
        error: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": {"$ref": ref[Error]}}},
        }
        if challenge and status in (401, 403):
            error["headers"] = BEARER_CHALLENGE
        responses[str(status)] = error
    item["responses"] = responses
    return item


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        description = prop.pop("description", None)
        # An optional parameter is absent rather than null (a query has no null).
        variants = [v for v in prop.pop("anyOf", []) if v != {"type": "null"}]
        if len(variants) == 1:
            prop.update(variants[0])
        elif variants:
            prop["anyOf"] = variants
        if prop.get("default", ...) is None:
            del prop["default"]
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters
