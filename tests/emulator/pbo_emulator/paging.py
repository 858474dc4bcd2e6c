"""Pages as AWS pages them: page sizes from the service models, opaque NextTokens.

Every list operation the emulator answers (its own handlers, and the Organizations list
operations it passes to moto, see ``app.EmulatorApp._pass_to_moto_paged``) is cut into pages here:

- The largest page is the ``max`` of the operation's ``MaxResults`` member in botocore's
  service-2.json (Organizations: ``MaxResults`` shape, range 1-20, for every List operation;
  Billing Conductor: ``MaxBillingGroupResults``, ``MaxPricingPlanResults``,
  ``MaxPricingRuleResults``, ``MaxCustomLineItemResults``, range 1-100). A request above it
  never reaches a handler: ``models.validate`` refuses it with the service's validation error
  (Organizations InvalidInputException Reason MAX_VALUE_EXCEEDED, Billing Conductor
  ValidationException Reason FIELD_VALIDATION_FAILED).
- Without ``MaxResults`` the page is as large as allowed: neither model documents a default
  (Organizations' MaxResults doc: "The maximum number of items to return in the response";
  older API reference text: "it defaults to a value that is specific to the operation", with no
  figure), so the emulator takes the maximum.
- Operations that page with ``NextToken`` but have no ``MaxResults`` member get the size in
  ``NO_LIMIT_MEMBER`` (our choice, no AWS figure exists; see tests/emulator/README.md).
- A NextToken is an opaque string bound to its operation; a token the emulator did not hand
  out for that operation is refused the way the service refuses a bad token (Organizations:
  InvalidInputException Reason INVALID_NEXT_TOKEN, the InvalidInputExceptionReason enum value;
  the exception's doc text calls it INVALID_PAGINATION_TOKEN).
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import lru_cache
from typing import Any

from . import models

#: (service, operation) -> page size, for paged operations whose input has no MaxResults.
#: No AWS figure exists for these; the sizes follow each service's usual list maximum.
NO_LIMIT_MEMBER: dict[tuple[str, str], int] = {
    # organizations ListTagsForResource: input ResourceId, NextToken (no MaxResults).
    ("organizations", "ListTagsForResource"): 20,
    # billingconductor ListAccountAssociations: input BillingPeriod, Filters, NextToken.
    ("billingconductor", "ListAccountAssociations"): 100,
}

#: Services whose list operations answered by moto are re-paged by our layer (moto pages some
#: of them 100 at a time, e.g. ListAccounts, and others not at all: ListRoots, ListTargetsForPolicy,
#: ListTagsForResource, ListChildren, ListParents return everything in one page).
REPAGED_MOTO_SERVICES = frozenset({"organizations"})


@lru_cache(maxsize=None)
def paginator(service: str, operation: str) -> dict[str, Any] | None:
    """The operation's entry in botocore's paginators-1.json, or None."""
    try:
        config = models._session.get_paginator_model(service).get_paginator(operation)
    except Exception:  # noqa: BLE001 - no paginators for the service or the operation
        return None
    return dict(config)


def result_keys(service: str, operation: str) -> list[str]:
    config = paginator(service, operation) or {}
    keys = config.get("result_key") or []
    return [keys] if isinstance(keys, str) else list(keys)


@lru_cache(maxsize=None)
def limits(service: str, operation: str) -> tuple[int, int]:
    """(default page size, largest page size) of a paged operation."""
    if (service, operation) in NO_LIMIT_MEMBER:
        size = NO_LIMIT_MEMBER[(service, operation)]
        return size, size
    model = models.service_model(service)
    shape = model.operation_model(operation).input_shape if model is not None else None
    limit_key = (paginator(service, operation) or {}).get("limit_key", "MaxResults")
    member = shape.members.get(limit_key) if shape is not None else None
    if member is None or "max" not in member.metadata:
        raise KeyError(f"{service}:{operation} has no MaxResults range; add it to NO_LIMIT_MEMBER")
    largest = int(member.metadata["max"])
    return largest, largest


def page_size(service: str, operation: str, params: dict[str, Any]) -> int:
    default, largest = limits(service, operation)
    asked = params.get("MaxResults")
    if asked in (None, ""):
        return default
    return min(int(asked), largest)


def token(service: str, operation: str, offset: int) -> str:
    raw = json.dumps({"v": 1, "s": service, "o": operation, "at": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def offset(service: str, operation: str, params: dict[str, Any]) -> int:
    """Where a page starts: 0 without NextToken, else what the token says."""
    value = params.get("NextToken")
    if value in (None, ""):
        return 0
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data.get("s") == service and data.get("o") == operation and int(data["at"]) >= 0:
            return int(data["at"])
    except (ValueError, TypeError, KeyError, binascii.Error, AttributeError):
        pass
    raise invalid_token(service, operation)


def invalid_token(service: str, operation: str):
    from .services import EmulatedError

    code, status = models.validation_error_code(service)
    exc = models.ValidationError("The NextToken is not valid for this operation.", "next_token", "nextToken")
    extra = models.validation_error_extra(service, code, exc)
    if code == "InvalidInputException":
        # organizations InvalidInputExceptionReason: INVALID_NEXT_TOKEN.
        extra["Reason"] = "INVALID_NEXT_TOKEN"
    return EmulatedError(code, str(exc), status, **extra)


def page(service: str, operation: str, params: dict[str, Any], items: list[Any], key: str) -> dict[str, Any]:
    """One page of ``items`` under ``key``, with a NextToken while more remain."""
    start = offset(service, operation, params)
    size = page_size(service, operation, params)
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["NextToken"] = token(service, operation, start + size)
    return out
