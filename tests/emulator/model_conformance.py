"""Hold emulator responses to the output shapes of the INSTALLED botocore models.

``check_output(service, operation, body)`` walks a raw JSON response (as the emulator sent it,
before botocore's parser drops what it does not know) against the operation's output shape and
returns the problems found:

- a member the shape does not define (``unknown member``);
- a member the model documents as retired, with a retirement date that has passed
  (``retired member``). The models mark this in the member's documentation, not with a trait:
  organizations ``Account.Status``: "The <code>Status</code> parameter in the <code>Account</code>
  object will be retired on September 9, 2026"; the ``Accounts`` / ``Account`` members of
  ListAccounts, ListAccountsForParent and DescribeAccount repeat it ("The <code>Status</code>
  parameter in the API response will be retired on September 9, 2026"). A Smithy ``deprecated``
  trait on a member (``"deprecated": true`` in service-2.json) counts too when its
  ``deprecatedMessage`` says the member is retired or removed; a member only documented as
  "deprecated" (organizations ``Organization.AvailablePolicyTypes``: "This field is deprecated")
  is still returned by AWS and is allowed;
- a member the shape lists as ``required`` that is missing;
- an explicit JSON null (AWS omits members it has no value for);
- a value of the wrong type, outside its enum, breaking its pattern or its length/range.

``check_error(service, body)`` does the same for an error body against the error shape its
``__type`` names (the protocol's ``__type`` / ``message`` envelope keys allowed).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.loaders import Loader

_session = botocore.session.get_session()
_DATE = r"([A-Z][a-z]+ \d{1,2}, \d{4})"
# "The <code>Status</code> parameter in the Account object will be retired on September 9, 2026"
_NAMED_RETIREMENT = re.compile(r"The\s+(\w+)\s+(?:parameter|field|member)\b[^.]*?\b(?:will be|was|has been|is)\s+retired\s+on\s+" + _DATE)
# A member's own doc: "This field will be retired on ..." / "Retired on ..."
_SELF_RETIREMENT = re.compile(r"(?:This\s+(?:parameter|field|member)\s+(?:will be|was|has been|is)\s+)?[Rr]etired\s+on\s+" + _DATE)
_ENVELOPE = {"__type", "message", "Message"}


def _text(html: str | None) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html or "")).strip()


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%B %d, %Y").date()


@lru_cache(maxsize=None)
def service_model(service: str):
    return _session.get_service_model(service)


@lru_cache(maxsize=None)
def _raw_model(service: str) -> dict[str, Any]:
    return Loader().load_service_model(service, "service-2")


@lru_cache(maxsize=None)
def retirements(service: str) -> dict[tuple[str, str], tuple[dt.date | None, str]]:
    """(structure shape name, member name) -> (retirement date or None, the model text that
    says so), for every member the installed model marks as retired."""
    raw = _raw_model(service)["shapes"]
    found: dict[tuple[str, str], tuple[dt.date | None, str]] = {}

    def target_structure(shape_name: str) -> str | None:
        shape = raw.get(shape_name, {})
        if shape.get("type") == "list":
            shape_name = shape["member"]["shape"]
            shape = raw.get(shape_name, {})
        return shape_name if shape.get("type") == "structure" else None

    for struct_name, struct in raw.items():
        if struct.get("type") != "structure":
            continue
        for member_name, member in struct.get("members", {}).items():
            doc = _text(member.get("documentation"))
            for name, when in _NAMED_RETIREMENT.findall(doc):
                if name == member_name:
                    found[(struct_name, member_name)] = (_date(when), doc)
                else:
                    inner = target_structure(member["shape"])
                    if inner and name in raw[inner].get("members", {}):
                        found.setdefault((inner, name), (_date(when), doc))
            if (struct_name, member_name) not in found:
                own = _SELF_RETIREMENT.search(doc)
                if own and not _NAMED_RETIREMENT.search(doc):
                    found[(struct_name, member_name)] = (_date(own.group(1)), doc)
            if member.get("deprecated"):
                message = member.get("deprecatedMessage", "")
                if re.search(r"retired|removed|no longer (?:returned|available)", message, re.I):
                    found[(struct_name, member_name)] = (None, f"deprecated trait: {message}")
    return found


def retired(service: str, today: dt.date | None = None) -> dict[tuple[str, str], str]:
    """The members retired as of ``today`` (default: the real date)."""
    today = today or dt.date.today()
    return {key: doc for key, (when, doc) in retirements(service).items() if when is None or when <= today}


@lru_cache(maxsize=4096)
def _regex(pattern: str):
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _walk(shape, value: Any, path: str, gone: dict[tuple[str, str], str], problems: list[str]) -> None:
    if value is None:
        problems.append(f"{path}: explicit null (AWS omits members it has no value for)")
        return
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a structure ({shape.name}), got {type(value).__name__}")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: missing, but {shape.name} marks it required")
        for name, item in value.items():
            where = f"{path}.{name}"
            if (shape.name, name) in gone:
                problems.append(f"{where}: retired member of {shape.name} ({gone[(shape.name, name)][:160]})")
            member = shape.members.get(name)
            if member is None:
                problems.append(f"{where}: unknown member ({shape.name} defines {sorted(shape.members)})")
                continue
            _walk(member, item, where, gone, problems)
        return
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list ({shape.name})")
            return
        _length(meta, len(value), path, problems)
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", gone, problems)
        return
    if kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map ({shape.name})")
            return
        _length(meta, len(value), path, problems)
        for key, item in value.items():
            _walk(shape.key, key, f"{path}<key>", gone, problems)
            _walk(shape.value, item, f"{path}[{key!r}]", gone, problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string ({shape.name}), got {value!r}")
            return
        _length(meta, len(value), path, problems)
        if meta.get("enum") and value not in meta["enum"]:
            problems.append(f"{path}: {value!r} is not in {shape.name} {meta['enum']}")
        pattern = meta.get("pattern")
        regex = _regex(pattern) if pattern else None
        if regex is not None and regex.fullmatch(value) is None:
            problems.append(f"{path}: {value!r} does not match {shape.name} pattern {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer ({shape.name}), got {value!r}")
        else:
            _range(meta, value, path, problems)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number ({shape.name}), got {value!r}")
        else:
            _range(meta, value, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean ({shape.name}), got {value!r}")
    elif kind == "timestamp":
        # JSON protocols send epoch seconds unless the shape's timestampFormat says otherwise.
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        if fmt == "unixTimestamp" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"{path}: expected epoch seconds ({shape.name}), got {value!r}")
        elif fmt == "iso8601" and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)):
            problems.append(f"{path}: expected an ISO 8601 timestamp ({shape.name}), got {value!r}")


def _length(meta: dict[str, Any], length: int, path: str, problems: list[str]) -> None:
    if "min" in meta and length < meta["min"]:
        problems.append(f"{path}: length {length} below the model's minimum {meta['min']}")
    if "max" in meta and length > meta["max"]:
        problems.append(f"{path}: length {length} above the model's maximum {meta['max']}")


def _range(meta: dict[str, Any], value: float, path: str, problems: list[str]) -> None:
    if "min" in meta and value < meta["min"]:
        problems.append(f"{path}: {value} below the model's minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        problems.append(f"{path}: {value} above the model's maximum {meta['max']}")


def check_output(service: str, operation: str, body: Any, today: dt.date | None = None) -> list[str]:
    """Problems of one response body (bytes, str or decoded dict) of ``service:operation``."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body or b"{}")
    shape = service_model(service).operation_model(operation).output_shape
    problems: list[str] = []
    if shape is None:
        if body:
            problems.append(f"{operation}: the model defines no output, got {sorted(body)}")
        return problems
    _walk(shape, body, operation, retired(service, today), problems)
    return problems


def check_error(service: str, body: Any) -> list[str]:
    """Problems of one error body against the error shape named by its ``__type``."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    code = str(body.get("__type", "")).split("#")[-1]
    model = service_model(service)
    shape = next((s for s in model.error_shapes if (s.error_code or s.name) == code), None)
    if shape is None:
        return [f"error {code!r} is not an error shape of {service}"]
    problems: list[str] = []
    members = {k: v for k, v in body.items() if k not in _ENVELOPE or k in shape.members}
    for name in shape.required_members:
        if name not in members and not (name == "Message" and ("message" in body or "Message" in body)):
            problems.append(f"{code}.{name}: missing, but the error shape marks it required")
    for name, value in members.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(f"{code}.{name}: unknown member of the error shape ({sorted(shape.members)})")
            continue
        _walk(member, value, f"{code}.{name}", {}, problems)
    return problems


class Recorder:
    """Keeps the raw body of every response a boto3 client receives (botocore's
    ``before-parse`` event), so the test sees what the emulator sent, not what botocore kept."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, bytes]] = []

    def attach(self, client) -> Any:
        service = client.meta.service_model.service_name

        def keep(operation_model=None, response_dict=None, **_kwargs):
            self.responses.append((service, operation_model.name, response_dict["status_code"], response_dict["body"]))

        client.meta.events.register("before-parse", keep)
        return client

    def problems(self, today: dt.date | None = None) -> list[str]:
        out: list[str] = []
        for service, operation, status, body in self.responses:
            if status >= 300:
                out.extend(f"{service}:{operation} -> {p}" for p in check_error(service, body))
            else:
                out.extend(f"{service}:{operation} -> {p}" for p in check_output(service, operation, body, today))
        return out

    def operations(self) -> set[tuple[str, str]]:
        return {(s, o) for s, o, status, _b in self.responses if status < 300}
