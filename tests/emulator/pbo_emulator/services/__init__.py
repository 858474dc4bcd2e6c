"""Services the emulator answers itself, because moto lacks them or gets them wrong.

Adding a service is one step: subclass ``EmulatedService`` in a module of this package, write
one ``op_<OperationName>(self, call)`` method per operation (returning the output as a dict
in the model's member names), and list an instance in ``REGISTRY``. Requests reach an
``op_`` method only after they were validated against botocore's model of the operation;
responses are serialized for the request's protocol. ``control_<name>`` methods become test
controls at ``POST /_emulator/services/<service>/<name>``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .. import models


class EmulatedError(Exception):
    """An AWS error to return: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        #: More members of the error shape, e.g. ``Reason`` of ConstraintViolationException.
        self.extra = extra


class EmulatedService:
    #: botocore service name, e.g. "billingconductor"
    name: str = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Clear all state (POST /_emulator/reset)."""

    def before(self, call: models.Call) -> None:
        """Called for every request to this service, also those passed on to moto: advance
        time-based state, or raise ``EmulatedError`` to refuse a request moto would accept."""

    def after(self, call: models.Call, output: dict[str, Any]) -> dict[str, Any]:
        """Called with the decoded JSON output of every successful request to this service,
        the ones moto answered included: mend what moto answers differently from AWS's current
        model (e.g. drop a member AWS retired). Returns the output to send."""
        return output

    def serves(self, operation: str | None) -> bool:
        return operation is not None and hasattr(self, "op_" + operation)

    def handle(self, call: models.Call) -> tuple[int, list[tuple[str, str]], bytes]:
        if call.operation is None or not self.serves(call.operation):
            raise EmulatedError("NotImplemented", f"{self.name}:{call.operation} is not emulated", 501)
        params = dict(call.params)
        model = models.service_model(self.name)
        if model is not None and call.operation in model.operation_names:
            shape = model.operation_model(call.operation).input_shape
            for member_name, member in (shape.members.items() if shape else []):
                loc = member.serialization.get("name", member_name)
                where = member.serialization.get("location")
                if where == "uri" and loc in call.path_params:
                    params[member_name] = call.path_params[loc]
                elif where == "header" and loc.lower() in call.headers:
                    params[member_name] = call.headers[loc.lower()]
                elif where == "querystring" and loc in params and loc != member_name:
                    params[member_name] = params.pop(loc)
        with self.lock:
            self.call = call
            output = getattr(self, "op_" + call.operation)(params) or {}
            output = self.after(call, output)
        content_type = "application/x-amz-json-1.1" if call.protocol == "json" else "application/json"
        return 200, [("Content-Type", content_type)], json.dumps(output, default=str).encode()

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        method = getattr(self, "control_" + action.replace("-", "_"), None)
        if method is None:
            raise EmulatedError("UnknownControl", f"{self.name} has no control {action}", 404)
        with self.lock:
            return method(payload)


#: Emulated services by botocore service name. Later services register here.
REGISTRY: dict[str, EmulatedService] = {}


def register(service: EmulatedService) -> EmulatedService:
    REGISTRY[service.name] = service
    return service


def route(call: models.Call) -> EmulatedService | None:
    """The service that answers ``call``: a registered service that claims it (``claims``:
    one that answers some calls of another AWS service, e.g. ``transfers``), else the one
    registered under the call's service name."""
    for service in REGISTRY.values():
        claims = getattr(service, "claims", None)
        if claims is not None and claims(call):
            return service
    return REGISTRY.get(call.service)


def _load() -> None:
    # Each module registers its service on import.
    from . import billingconductor, organizations, pipeline, transfers  # noqa: F401


_load()
