"""`make bench-scale`, file mode: per size, `plan`, `apply` and `plan` again over N objects.

  bench_filemode.py BIN URL N [N ...]

For each N: a fresh organization in the emulator at URL with the accounts of bench_lib.mix(N),
the manifests of bench_lib.manifests (a Payer, a PricingPlan, N/20 BillingGroups, the rest
LinkedAccounts adopting those accounts) in a temporary folder, then BIN plan, BIN apply, BIN
plan again and BIN plan --refresh-tags=false (`-o json`), each as a child process. Printed per step: the operator's own CPU
seconds (user + sys from wait4: the emulator's time is not in it) and CPU per object, its peak
RSS, the AWS calls the emulator counted in that step (at AWS's page sizes) next to the formula
⌈accounts/20⌉ + ⌈groups/100⌉, and by operation, with how many listings each list operation
amounts to. Wall time is printed last and only for information: it is mostly the emulator's,
and the machine may be shared.
"""

import json
import os
import sys
import tempfile

import bench_lib as b


def main() -> int:
    binary, url, sizes = sys.argv[1], sys.argv[2], [int(n) for n in sys.argv[3:]]
    emu = b.Emulator(url)
    env = b.aws_env(url)
    for n in sizes:
        accounts, groups = b.mix(n)
        ids = emu.seed(accounts)
        target = b.formula(accounts, groups)
        head = f"bench filemode: {n:,} objects ({accounts:,} LinkedAccounts, {groups} BillingGroups, a Payer, a PricingPlan)"
        with tempfile.TemporaryDirectory(prefix="pbo-bench-") as d:
            manifests = os.path.join(d, "manifests")
            os.mkdir(manifests)
            b.write_docs(manifests, b.manifests(n, ids, "bench"))
            steps = (("plan", "plan", []), ("apply", "apply", []), ("plan", "plan again", []),
                     ("plan", "plan again --refresh-tags=false", ["--refresh-tags=false"]))
            for step, label, extra in steps:
                emu.clear_requests()
                out = os.path.join(d, "report.json")
                r = b.run_measured([binary, step, "-f", manifests, "-o", "json", *extra], env, out)
                total, by_op = emu.requests()
                try:
                    report = json.load(open(out))
                except ValueError:
                    report = {}
                objects = report.get("objects", [])
                ready = sum(1 for o in objects if o.get("ready"))
                changes = sum(len(o.get("changes", [])) for o in objects)
                writes = sum(c for op, c in by_op.items()
                             if not op.split(":", 1)[1].startswith(("List", "Describe", "Get")))
                print(f"{head}: {label}: operator CPU {r['cpu']:.2f} s (user {r['user']:.2f} + sys {r['sys']:.2f}) "
                      f"= {r['cpu'] / n * 1e6:,.0f} µs per object; peak RSS {b.mib(r['maxrss_kib'])} "
                      f"({r['maxrss_kib'] / n:.1f} KiB per object); {total:,} AWS calls ({writes:,} writes) "
                      f"vs the formula ⌈{accounts + 1:,}/20⌉ + ⌈{groups}/100⌉ = {target} (+ a small constant per payer): "
                      f"{total / target:.1f} x; exit {r['exit']}, {ready:,} of {len(objects):,} ready, {changes:,} changes; "
                      f"wall {r['wall']:.1f} s (emulator included)", flush=True)
                print(f"{head}: {label}: AWS calls by operation: {b.describe_calls(by_op, accounts, groups)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
