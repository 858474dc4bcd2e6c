"""AWS service models from botocore: which service and operation a request is, what its
parameters are, whether they are valid, and how an error looks in the service's protocol.

Nothing here is hand-copied from AWS documentation: shapes, required members, patterns,
lengths, ranges and enums all come from the service-2.json models that ship in botocore.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session

# SigV4 signing names whose botocore service name differs.
SIGNING_TO_SERVICE = {
    "ses": "sesv2",
    "bcm-data-exports": "bcm-data-exports",
    "billingconductor": "billingconductor",
    "ce": "ce",
    "cur": "cur",
}

_session = botocore.session.get_session()


@lru_cache(maxsize=None)
def service_model(name: str):
    """The botocore ServiceModel for a service name, or None when botocore has none."""
    try:
        return _session.get_service_model(name)
    except Exception:  # noqa: BLE001 - unknown service
        return None


def service_for_signing_name(signing_name: str) -> str:
    return SIGNING_TO_SERVICE.get(signing_name, signing_name)


@dataclass
class Call:
    """One AWS request as the emulator understands it."""

    signing_name: str
    service: str
    protocol: str  # json | query | rest-json | rest-xml | unknown
    operation: str | None
    params: dict[str, Any]
    path_params: dict[str, str]
    access_key: str | None
    region: str | None
    headers: dict[str, str] = field(default_factory=dict)


def parse_authorization(auth: str | None) -> tuple[str | None, str | None, str | None]:
    """(access key, region, signing name) from a SigV4 Authorization header."""
    if not auth:
        return None, None, None
    try:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
        key, _date, region, service, _ = credential.split("/")
        return key, region, service.lower()
    except (IndexError, ValueError):
        return None, None, None


def detect_protocol(headers: dict[str, str]) -> str:
    content_type = headers.get("content-type", "")
    if "x-amz-target" in headers:
        return "json"
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "query"
    if headers.get("smithy-protocol", "") == "rpc-v2-cbor":
        return "cbor"
    return "rest"


def _uri_regex(request_uri: str) -> tuple[re.Pattern[str], int]:
    path = request_uri.split("?", 1)[0]
    literal = 0
    out = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.endswith("+"):
                out += f"(?P<{name[:-1]}>.+)"
            else:
                out += f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(part)
            literal += len(part)
    return re.compile("^" + out + "/?$"), literal


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], int, str, tuple[tuple[str, str | None], ...]]]:
    """(method, path regex, literal length, operation, query keys the URI requires).

    Query literals in a requestUri (S3's ``/{Bucket}?policy``, ``?list-type=2``) tell
    operations on the same path apart, so they must be present for a route to match.
    """
    model = service_model(service)
    routes = []
    if model is None:
        return routes
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http.get("requestUri", "/")
        regex, literal = _uri_regex(uri)
        required: list[tuple[str, str | None]] = []
        if "?" in uri:
            for piece in uri.split("?", 1)[1].split("&"):
                if not piece:
                    continue
                key, _, value = piece.partition("=")
                required.append((key, value or None))
        routes.append((http.get("method", "POST"), regex, literal, op_name, tuple(required)))
    routes.sort(key=lambda r: (-len(r[4]), -r[2]))
    return routes


def identify(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Call:
    access_key, region, signing = parse_authorization(headers.get("authorization"))
    signing = signing or "unknown"
    service = service_for_signing_name(signing)
    protocol = detect_protocol(headers)
    operation: str | None = None
    params: dict[str, Any] = {}
    path_params: dict[str, str] = {}
    if protocol == "json":
        operation = headers["x-amz-target"].split(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {"__invalid_json__": True}
    elif protocol == "query":
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        flat = {k: v[-1] for k, v in form.items()}
        operation = flat.pop("Action", None)
        flat.pop("Version", None)
        params = flat
    elif protocol == "rest":
        model = service_model(service)
        if model is not None:
            protocol = "rest-xml" if model.protocol == "rest-xml" else "rest-json"
        query_keys = parse_qs(query, keep_blank_values=True)
        for route_method, regex, _literal, op_name, required in _rest_routes(service):
            if route_method != method:
                continue
            if any(k not in query_keys or (v is not None and v not in query_keys[k]) for k, v in required):
                continue
            match = regex.match(path)
            if match:
                operation = op_name
                path_params = {k: unquote(v) for k, v in match.groupdict().items()}
                break
        if protocol == "rest-json" and body:
            try:
                params = json.loads(body)
            except ValueError:
                params = {"__invalid_json__": True}
        if query:
            for k, v in parse_qs(query, keep_blank_values=True).items():
                params.setdefault(k, v[-1] if len(v) == 1 else v)
    return Call(signing, service, protocol, operation, params, path_params, access_key, region, dict(headers))


class ValidationError(Exception):
    """A request that breaks its input shape. ``kind`` names the constraint (required,
    min_length, max_length, min_value, max_value, enum, pattern, type), ``field`` the member
    path, so the error can carry the service's own modeled reason (see validation_error_extra)."""

    def __init__(self, message: str, kind: str = "type", field: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def validate(call: Call) -> None:
    """Validate a request's parameters against the operation's input shape.

    Raises ValidationError with an AWS-like message naming the member at fault.
    """
    model = service_model(call.service)
    if model is None or call.operation is None:
        return
    if call.operation not in model.operation_names:
        return
    if call.params.get("__invalid_json__"):
        raise ValidationError("Request body is not valid JSON")
    shape = model.operation_model(call.operation).input_shape
    if shape is None:
        return
    if call.protocol == "query":
        _validate_query(shape, call.params)
        return
    if call.protocol == "rest-xml":
        # XML bodies (S3) are not parsed here; moto checks them itself.
        return
    params = dict(call.params)
    if call.protocol.startswith("rest"):
        # Members bound to the URI or headers arrive outside the body.
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            if location == "uri":
                loc_name = member.serialization.get("name", name)
                if loc_name in call.path_params:
                    params[name] = call.path_params[loc_name]
            elif location in ("querystring",):
                loc_name = member.serialization.get("name", name)
                if loc_name in call.params:
                    params[name] = call.params.pop(loc_name) if loc_name != name else call.params[loc_name]
                    # A list sent once (?tagKeys=a) is still a list.
                    if member.type_name == "list" and isinstance(params[name], str):
                        params[name] = [params[name]]
            elif location == "header":
                params.setdefault(name, None)
                if params[name] is None:
                    params.pop(name)
    _validate_shape(shape, params, "")


def _validate_query(shape, flat: dict[str, str]) -> None:
    """Query protocol flattens nested members; check top-level scalars and required members."""
    for name in shape.required_members:
        if not any(key == name or key.startswith(name + ".") for key in flat):
            raise ValidationError(
                f"1 validation error detected: Value null at '{_lower(name)}' failed to satisfy constraint: Member must not be null",
                "required",
                _lower(name),
            )
    for name, member in shape.members.items():
        if name in flat and member.type_name == "string":
            _validate_scalar(member, flat[name], name)
        elif name in flat and member.type_name in ("integer", "long"):
            try:
                _validate_scalar(member, int(flat[name]), name)
            except ValueError as exc:
                raise ValidationError(f"Value '{flat[name]}' at '{_lower(name)}' is not an integer", "type", _lower(name)) from exc


def _lower(name: str) -> str:
    return name[:1].lower() + name[1:]


def _validate_shape(shape, value: Any, path: str) -> None:
    kind = shape.type_name
    if value is None:
        return
    if kind == "structure":
        if not isinstance(value, dict):
            raise ValidationError(f"Value at '{path}' must be a structure", "type", path)
        for name in shape.required_members:
            if value.get(name) is None:
                raise ValidationError(
                    f"1 validation error detected: Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null",
                    "required",
                    _join(path, name),
                )
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                continue  # unknown members are ignored, as AWS does for JSON protocols
            _validate_shape(member, member_value, _join(path, name))
        return
    if kind == "list":
        if not isinstance(value, list):
            raise ValidationError(f"Value at '{path}' must be a list", "type", path)
        _check_length(shape, len(value), path, "length")
        for i, item in enumerate(value):
            _validate_shape(shape.member, item, f"{path}.{i + 1}")
        return
    if kind == "map":
        if not isinstance(value, dict):
            raise ValidationError(f"Value at '{path}' must be a map", "type", path)
        _check_length(shape, len(value), path, "length")
        for key, item in value.items():
            _validate_shape(shape.key, key, f"{path}.key")
            _validate_shape(shape.value, item, f"{path}.{key}")
        return
    _validate_scalar(shape, value, path)


def _join(path: str, name: str) -> str:
    return _lower(name) if not path else f"{path}.{_lower(name)}"


def _check_length(shape, length: int, path: str, what: str) -> None:
    meta = shape.metadata
    if "min" in meta and length < meta["min"]:
        raise ValidationError(
            f"1 validation error detected: Value at '{path}' failed to satisfy constraint: Member must have {what} greater than or equal to {meta['min']}",
            "min_length",
            path,
        )
    if "max" in meta and length > meta["max"]:
        raise ValidationError(
            f"1 validation error detected: Value at '{path}' failed to satisfy constraint: Member must have {what} less than or equal to {meta['max']}",
            "max_length",
            path,
        )


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # Java-only syntax (e.g. \p{..}); AWS checks it, we cannot


def _validate_scalar(shape, value: Any, path: str) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        if not isinstance(value, str):
            raise ValidationError(f"Value at '{path}' must be a string", "type", path)
        _check_length(shape, len(value), path, "length")
        enum = meta.get("enum")
        if enum and value not in enum:
            raise ValidationError(
                f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(enum)}]",
                "enum",
                path,
            )
        pattern = meta.get("pattern")
        if pattern:
            regex = _compiled(pattern)
            if regex is not None and regex.fullmatch(value) is None and regex.match(value) is None:
                raise ValidationError(
                    f"1 validation error detected: Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}",
                    "pattern",
                    path,
                )
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"Value at '{path}' must be an integer", "type", path)
        _check_range(meta, value, path)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"Value at '{path}' must be a number", "type", path)
        _check_range(meta, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ValidationError(f"Value at '{path}' must be a boolean", "type", path)
    elif kind == "blob":
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise ValidationError(f"Value at '{path}' must be base64", "type", path) from exc


def _check_range(meta: dict[str, Any], value: float, path: str) -> None:
    if "min" in meta and value < meta["min"]:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}",
            "min_value",
            path,
        )
    if "max" in meta and value > meta["max"]:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}",
            "max_value",
            path,
        )


def strip_members(shape, value: Any, retired: dict[str, frozenset[str]]) -> Any:
    """Remove, in place, the members ``retired[shape name]`` from every structure of that
    shape inside ``value`` (an output decoded from JSON), walking the model's shapes."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name in retired.get(shape.name, ()):
            value.pop(name, None)
        for name, item in value.items():
            member = shape.members.get(name)
            if member is not None:
                strip_members(member, item, retired)
    elif kind == "list" and isinstance(value, list):
        for item in value:
            strip_members(shape.member, item, retired)
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            strip_members(shape.value, item, retired)
    return value


# --- errors ---------------------------------------------------------------------------------


def _modeled_error(service: str, predicate) -> tuple[str, int] | None:
    model = service_model(service)
    if model is None:
        return None
    for shape in model.error_shapes:
        code = shape.error_code or shape.name
        status = shape.metadata.get("error", {}).get("httpStatusCode", 400)
        if predicate(code, status, shape):
            return code, status
    return None


@lru_cache(maxsize=None)
def throttling_error(service: str) -> tuple[str, int]:
    """The service's own throttling error code and HTTP status, from its model."""
    found = _modeled_error(
        service, lambda code, _s, _sh: "Throttl" in code or "TooManyRequests" in code
    )
    if found:
        return found
    return ("Throttling", 400) if _query_service(service) else ("ThrottlingException", 400)


@lru_cache(maxsize=None)
def server_error(service: str) -> tuple[str, int]:
    found = _modeled_error(service, lambda _c, status, _sh: status >= 500)
    if found:
        return found
    return ("InternalFailure", 500)


@lru_cache(maxsize=None)
def validation_error_code(service: str) -> tuple[str, int]:
    found = _modeled_error(
        service,
        lambda code, status, _sh: status == 400 and code in ("ValidationException", "InvalidInputException"),
    )
    if found:
        return found
    return ("ValidationError", 400) if _query_service(service) else ("ValidationException", 400)


# The constraint a request broke -> the reason Organizations' InvalidInputException gives for it
# (botocore organizations InvalidInputExceptionReason; the InvalidInputException doc text:
# "MAX_VALUE_EXCEEDED: You provided a numeric parameter that has a larger value than allowed", ...).
_INVALID_INPUT_REASONS = {
    "required": "INPUT_REQUIRED",
    "min_length": "MIN_LENGTH_EXCEEDED",
    "max_length": "MAX_LENGTH_EXCEEDED",
    "min_value": "MIN_VALUE_EXCEEDED",
    "max_value": "MAX_VALUE_EXCEEDED",
    "enum": "INVALID_ENUM",
    "pattern": "INVALID_PATTERN",
}


def validation_error_extra(service: str, code: str, exc: ValidationError) -> dict[str, Any]:
    """The members beyond the message that the service's validation error shape carries, in
    the service's own terms: Organizations' InvalidInputException has ``Reason``
    (MAX_VALUE_EXCEEDED, ...); Billing Conductor's ValidationException has ``Reason``
    FIELD_VALIDATION_FAILED and ``Fields`` [{Name, Message}] (ValidationExceptionReason,
    ValidationExceptionField in its model). Only enum values the model lists are used."""
    model = service_model(service)
    if model is None:
        return {}
    shape = next((s for s in model.error_shapes if (s.error_code or s.name) == code), None)
    if shape is None or "Reason" not in shape.members:
        return {}
    enum = shape.members["Reason"].metadata.get("enum") or []
    extra: dict[str, Any] = {}
    reason = _INVALID_INPUT_REASONS.get(exc.kind)
    if reason in enum:
        extra["Reason"] = reason
    elif "FIELD_VALIDATION_FAILED" in enum:
        extra["Reason"] = "FIELD_VALIDATION_FAILED"
        if "Fields" in shape.members and exc.field:
            extra["Fields"] = [{"Name": exc.field, "Message": str(exc)}]
    return extra


def _query_service(service: str) -> bool:
    model = service_model(service)
    return model is not None and model.protocol == "query"


def error_response(
    call_protocol: str, service: str, code: str, message: str, status: int, extra: dict[str, Any] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS-shaped error in the request's protocol: (status, headers, body)."""
    request_id = str(uuid.uuid4())
    if call_protocol in ("query", "rest-xml"):
        if call_protocol == "query":
            body = (
                "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>"
                "<RequestId>{}</RequestId></ErrorResponse>"
            ).format("Receiver" if status >= 500 else "Sender", _xml(code), _xml(message), request_id)
        else:
            body = "<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>".format(
                _xml(code), _xml(message), request_id
            )
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return status, headers, body.encode()
    content_type = "application/x-amz-json-1.1" if call_protocol == "json" else "application/json"
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-ErrorType", code),
        ("x-amzn-RequestId", request_id),
    ]
    payload = {"__type": code, "message": message, "Message": message}
    payload.update(extra or {})
    return status, headers, json.dumps(payload).encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
