"""A memo in front of moto's access-key -> account lookup.

moto finds the account of an access key by walking the IAM backends of every account it knows
(creating missing ones on the way), on every request: with thousands of organization accounts
each request costs milliseconds. An access key never changes account, so the answer is kept
until the emulator is reset. Installed before the services import the function.
"""

from __future__ import annotations

import threading

import moto.iam.models as iam_models

_original = iam_models.get_account_id_from
_memo: dict[str, str] = {}
_lock = threading.Lock()


def get_account_id_from(access_key: str) -> str:
    with _lock:
        known = _memo.get(access_key)
    if known is not None:
        return known
    account = _original(access_key)
    # Keys moto issues (AssumeRole, CreateAccessKey) are random: none is asked for before
    # it exists, so unknown keys (the default account) can be kept too.
    with _lock:
        _memo[access_key] = account
    return account


def clear() -> None:
    with _lock:
        _memo.clear()


iam_models.get_account_id_from = get_account_id_from
