"""Run the project's Argo CD health check of one kind on one object, with the same Lua runner
as test_argocd_health.py (lupa, a real Lua). The real-server suite feeds it objects read back
from the API server.

    $TOOLS/venv/bin/python tests/tools/argocd_health.py KIND < object.json
    -> {"status": "Healthy", "message": "..."}
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from test_argocd_health import KINDS, check  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        print(f"usage: {sys.argv[0]} KIND < object.json  (KIND one of {', '.join(KINDS)})", file=sys.stderr)
        return 2
    obj = json.load(sys.stdin)
    if obj.get("kind") not in (None, sys.argv[1]):
        print(f"the object is a {obj.get('kind')}, not a {sys.argv[1]}", file=sys.stderr)
        return 2
    print(json.dumps(check(sys.argv[1], obj)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
