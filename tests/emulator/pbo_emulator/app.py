"""One WSGI app: the project's own AWS services and test controls in front of moto.

Every AWS request is identified (service from the SigV4 scope, operation from the protocol),
counted, checked against fault rules, validated against botocore's model, and then answered
by an emulated service from ``services.REGISTRY`` when there is one, or passed to moto.
Operations neither can serve get an AWS-shaped JSON/XML error instead of moto's HTML 500.

Control API (JSON over HTTP, under ``/_emulator``):
  GET    /_emulator/health                 liveness
  POST   /_emulator/reset                  clear moto, emulated services, faults and counters
  GET    /_emulator/requests               request counts by service and operation
  DELETE /_emulator/requests               zero the counters
  POST   /_emulator/faults                 add a fault rule (see FaultRule)
  GET    /_emulator/faults                 list fault rules
  DELETE /_emulator/faults                 remove all fault rules
  POST   /_emulator/services/<svc>/<action> a test control of an emulated service
  GET    /_emulator/mail                   messages the SMTP server received (with --smtp-port)
  DELETE /_emulator/mail                   forget them
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from moto.backend_index import backend_url_patterns
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from . import account_ids, models, paging
from .services import REGISTRY, EmulatedError, route

# Signing names that moto answers even though no backend URL pattern names them directly.
_MOTO_ALIASES = {"ses": "sesv2"}


@dataclass
class FaultRule:
    """Inject a fault into matching requests.

    kind: ``throttle`` (the service's own throttling error), ``server_error`` (5xx),
    ``latency`` (delay, then serve normally). ``count`` limits how many requests it hits
    (None = until cleared); ``probability`` hits each matching request with that chance.
    """

    kind: str
    service: str | None = None
    operation: str | None = None
    count: int | None = None
    probability: float = 1.0
    latency_ms: int = 0
    hits: int = 0

    def matches(self, call: models.Call) -> bool:
        if self.service and self.service not in (call.service, call.signing_name):
            return False
        if self.operation and self.operation != call.operation:
            return False
        return self.count is None or self.hits < self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "operation": self.operation,
            "count": self.count,
            "probability": self.probability,
            "latencyMs": self.latency_ms,
            "hits": self.hits,
        }


@dataclass
class State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    faults: list[FaultRule] = field(default_factory=list)
    mail: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(20261124))


class EmulatorApp:
    request_handler = MotoRequestHandler

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.state = State()
        self.smtp = None

    def start_smtp(self, host: str, port: int) -> None:
        """Run a real SMTP server (aiosmtpd) that keeps what it receives."""
        from aiosmtpd.controller import Controller

        state = self.state

        class Keep:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                text = envelope.content.decode("utf-8", errors="replace")
                with state.lock:
                    state.mail.append(
                        {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": text}
                    )
                return "250 Message accepted for delivery"

        self.smtp = Controller(Keep(), hostname=host, port=port)
        self.smtp.start()

    # -- WSGI ----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator"):
            status, body = self._control(environ, path)
            return _respond(start_response, status, [("Content-Type", "application/json")], json.dumps(body).encode())
        if path.startswith("/moto-api"):
            return self.moto(environ, start_response)

        body = _read_body(environ)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        # Route on the path as sent: a percent-encoded label (an ARN with '/' in
        # /tags/{ResourceArn}) is one segment; the labels are decoded after matching.
        raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or path).split("?", 1)[0]
        call = models.identify(
            environ.get("REQUEST_METHOD", "GET"), raw_path, environ.get("QUERY_STRING", ""), headers, body
        )
        key = (call.service, call.operation or "?")
        with self.state.lock:
            self.state.counts[key] += 1
            fault = self._pick_fault(call)

        if fault is not None and fault.kind == "latency":
            time.sleep(fault.latency_ms / 1000.0)
            fault = None
        if fault is not None:
            code, status = (
                models.throttling_error(call.service) if fault.kind == "throttle" else models.server_error(call.service)
            )
            self._outcome(key, "injected_" + fault.kind)
            return _respond(start_response, *models.error_response(call.protocol, call.service, code, f"Injected fault: {fault.kind}", status))

        try:
            models.validate(call)
        except models.ValidationError as exc:
            code, status = models.validation_error_code(call.service)
            self._outcome(key, "invalid")
            extra = models.validation_error_extra(call.service, code, exc)
            return _respond(start_response, *models.error_response(call.protocol, call.service, code, str(exc), status, extra))

        service = route(call)
        if service is not None:
            try:
                with service.lock:
                    service.before(call)
                if service.serves(call.operation):
                    status, resp_headers, resp_body = service.handle(call)
                    self._outcome(key, "ok")
                    return _respond(start_response, status, resp_headers, resp_body)
            except EmulatedError as exc:
                self._outcome(key, "error")
                return _respond(
                    start_response,
                    *models.error_response(call.protocol, call.service, exc.code, exc.message, exc.status, exc.extra),
                )

        if not self._moto_serves(call):
            self._outcome(key, "unsupported")
            return _respond(
                start_response,
                *models.error_response(
                    call.protocol,
                    call.service,
                    "NotImplemented",
                    f"The emulator does not implement {call.service}:{call.operation}",
                    501,
                ),
            )
        if self._repaged(call):
            try:
                return self._pass_to_moto_paged(environ, start_response, call, key)
            except EmulatedError as exc:
                self._outcome(key, "error")
                return _respond(
                    start_response,
                    *models.error_response(call.protocol, call.service, exc.code, exc.message, exc.status, exc.extra),
                )
        return self._pass_to_moto(environ, start_response, call, key)

    # -- moto ----------------------------------------------------------------------------
    def _moto_serves(self, call: models.Call) -> bool:
        name = _MOTO_ALIASES.get(call.signing_name, call.signing_name)
        host = f"http://{name}.us-east-1.amazonaws.com"
        return any(pattern.match(host) for _backend, pattern in backend_url_patterns) or name in ("sts", "s3")

    def _call_moto(self, environ) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers, exc_info=None):
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        chunks = self.moto(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], body

    @staticmethod
    def _repaged(call: models.Call) -> bool:
        if call.service not in paging.REPAGED_MOTO_SERVICES or call.protocol != "json" or call.operation is None:
            return False
        config = paging.paginator(call.service, call.operation)
        return bool(config) and config.get("input_token") == "NextToken" and len(paging.result_keys(call.service, call.operation)) == 1

    def _pass_to_moto_paged(self, environ, start_response, call: models.Call, key):
        """A list operation moto answers, paged by our layer (see paging.py): moto is asked for
        everything (following its own tokens), and the caller gets the page its NextToken and
        MaxResults ask for, no larger than the model's maximum."""
        start = paging.offset(call.service, call.operation, call.params)
        size = paging.page_size(call.service, call.operation, call.params)
        result_key = paging.result_keys(call.service, call.operation)[0]
        query = {k: v for k, v in call.params.items() if k not in ("NextToken", "MaxResults")}
        items: list[Any] = []
        moto_token = None
        while True:
            body = dict(query)
            if moto_token:
                body["NextToken"] = moto_token
            raw = json.dumps(body).encode()
            sub = dict(environ)
            sub["wsgi.input"] = io.BytesIO(raw)
            sub["CONTENT_LENGTH"] = str(len(raw))
            raw_status, headers, out_body = self._call_moto(sub)
            status_code = int(raw_status.split(" ", 1)[0])
            if status_code >= 400:
                # moto's own error (e.g. a parent that doesn't exist): ask again with the
                # request as sent (environ's body is untouched) and hand the answer on.
                return self._pass_to_moto(environ, start_response, call, key)
            output = json.loads(out_body or b"{}")
            items.extend(output.get(result_key) or [])
            moto_token = output.get("NextToken")
            if not moto_token:
                break
        output.pop("NextToken", None)
        output[result_key] = items[start : start + size]
        if start + size < len(items):
            output["NextToken"] = paging.token(call.service, call.operation, start + size)
        service = REGISTRY.get(call.service)
        if service is not None:
            with service.lock:
                output = service.after(call, output)
        self._outcome(key, "ok")
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("Content-Type", "application/x-amz-json-1.1"))
        return _respond(start_response, 200, headers, json.dumps(output, default=str).encode())

    def _pass_to_moto(self, environ, start_response, call: models.Call, key):
        raw_status, raw_headers, body = self._call_moto(environ)
        captured = {"status": raw_status, "headers": raw_headers}
        status_code = int(captured["status"].split(" ", 1)[0])
        content_type = next((v for k, v in captured["headers"] if k.lower() == "content-type"), "")
        if status_code >= 500 and "html" in content_type:
            # moto raised (typically NotImplementedError): answer like AWS would, without a retry storm.
            self._outcome(key, "unsupported")
            return _respond(
                start_response,
                *models.error_response(
                    call.protocol,
                    call.service,
                    "NotImplemented",
                    f"The emulator (moto) does not implement {call.service}:{call.operation}",
                    501,
                ),
            )
        service = REGISTRY.get(call.service)
        if service is not None and status_code < 400 and call.protocol in ("json", "rest-json") and body:
            # (moto labels its JSON bodies text/html, so go by the protocol, not the header.)
            # Our layer has the last word on what moto answers (e.g. members AWS retired).
            try:
                output = json.loads(body)
            except ValueError:
                output = None
            if isinstance(output, dict):
                with service.lock:
                    body = json.dumps(service.after(call, output), default=str).encode()
        self._outcome(key, "ok" if status_code < 400 else "error")
        return _respond(start_response, status_code, captured["headers"], body, raw_status=captured["status"])

    # -- faults and counters ---------------------------------------------------------------
    def _pick_fault(self, call: models.Call) -> FaultRule | None:
        for rule in self.state.faults:
            if not rule.matches(call):
                continue
            if rule.probability < 1.0 and self.state.rng.random() >= rule.probability:
                continue
            rule.hits += 1
            return rule
        return None

    def _outcome(self, key, outcome: str) -> None:
        with self.state.lock:
            self.state.outcomes[(key[0], key[1], outcome)] += 1

    # -- control API -----------------------------------------------------------------------
    def _control(self, environ, path: str) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD", "GET")
        raw = _read_body(environ)
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            return 400, {"error": "body must be JSON"}
        parts = [p for p in path.split("/") if p][1:]
        if parts == ["health"]:
            return 200, {"ok": True}
        if parts == ["reset"] and method == "POST":
            self.reset()
            return 200, {"reset": True}
        if parts == ["requests"]:
            with self.state.lock:
                if method == "DELETE":
                    self.state.counts.clear()
                    self.state.outcomes.clear()
                    return 200, {"cleared": True}
                counts = [
                    {"service": s, "operation": o, "count": n} for (s, o), n in sorted(self.state.counts.items())
                ]
                outcomes = [
                    {"service": s, "operation": o, "outcome": r, "count": n}
                    for (s, o, r), n in sorted(self.state.outcomes.items())
                ]
                return 200, {"total": sum(self.state.counts.values()), "counts": counts, "outcomes": outcomes}
        if parts == ["mail"]:
            with self.state.lock:
                if method == "DELETE":
                    self.state.mail.clear()
                    return 200, {"cleared": True}
                return 200, {"messages": list(self.state.mail)}
        if parts == ["faults"]:
            with self.state.lock:
                if method == "DELETE":
                    self.state.faults.clear()
                    return 200, {"cleared": True}
                if method == "POST":
                    kind = payload.get("kind")
                    if kind not in ("throttle", "server_error", "latency"):
                        return 400, {"error": "kind must be throttle, server_error or latency"}
                    rule = FaultRule(
                        kind=kind,
                        service=payload.get("service"),
                        operation=payload.get("operation"),
                        count=payload.get("count"),
                        probability=float(payload.get("probability", 1.0)),
                        latency_ms=int(payload.get("latencyMs", 0)),
                    )
                    self.state.faults.append(rule)
                    return 200, rule.to_json()
                return 200, {"faults": [r.to_json() for r in self.state.faults]}
        if len(parts) == 3 and parts[0] == "services" and method == "POST":
            service = REGISTRY.get(parts[1])
            if service is None:
                return 404, {"error": f"no emulated service {parts[1]}"}
            try:
                return 200, service.control(parts[2], payload)
            except EmulatedError as exc:
                return exc.status, {"error": exc.message, "code": exc.code}
        return 404, {"error": f"unknown control {method} {path}"}

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        account_ids.clear()
        for service in REGISTRY.values():
            service.reset()
        with self.state.lock:
            self.state.counts.clear()
            self.state.outcomes.clear()
            self.state.faults.clear()
            self.state.mail.clear()


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    import io

    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _respond(start_response, status: int, headers, body: bytes, raw_status: str | None = None):
    from http import HTTPStatus

    if raw_status is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        raw_status = f"{status} {phrase}"
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(raw_status, headers)
    return [body]

