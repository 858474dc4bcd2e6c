"""`make bench-scale`, the controller: resident memory, CPU and AWS calls of `run` with N objects
in its watch caches, on the real kube-apiserver the cluster suite builds (tests/cluster).

  bench_controller.py BIN URL CLUSTER_DIR N [N ...]

Starts etcd and kube-apiserver in CLUSTER_DIR (emptied first; tests/cluster/start.sh, without
kube-controller-manager) and applies the CRDs BIN prints. Then for each N, in a namespace of
its own (bench-N): a fresh organization in the emulator at URL, the objects of
bench_lib.manifests(N) created with `kubectl create --save-config` (so that they carry the
kubectl.kubernetes.io/last-applied-configuration annotation and managedFields, as objects
made by `kubectl apply` or Argo CD's client-side apply do), and `BIN run --namespace bench-N`
(admin kubeconfig, the emulator as AWS, resync 3600 s so that no resync falls inside the
measurement) as a child process, twice:

1. initial sync, from nothing: done when every object in the namespace carries a status for
   its generation (`status.observedGeneration == metadata.generation`, read with kubectl once
   the controller's reconcile counters reach the number of objects of each kind);
2. a restart over the converged objects (what a controller holds and does after a rollout):
   done when every object was reconciled once and no reconcile started for 10 s.

When the controller's own gauge turned 1 (`partnerbilling_ready 1` on /metrics: every object
of the initial list reconciled once past the finalizer) is printed beside. Then, and again
30 s later, it prints the process's VmRSS and VmHWM (/proc/PID/status), its own CPU seconds
(/proc/PID/stat: the emulator's and the API server's are not in it) and the AWS calls the
emulator counted, by operation. The controller is stopped (SIGTERM) after each. Between two sizes, memory per object is the difference of resident
memory over the difference of objects (the fixed part of the process cancels out). The
control plane is always stopped.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import bench_lib as b

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "cluster")
SETTLE = 30
QUIET = 10
READY_TIMEOUT = int(os.environ.get("PBO_BENCH_READY_TIMEOUT", "5400"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port: int, name: str) -> float | None:
    """Sum of the samples of `name` on /metrics; `name` may end in labels (`x{kind="A"}`)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name if "{" in name else name + "{"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    # Stopped by make or a person: still stop the operator and the control plane (finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binary, url, cluster_dir = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
    sizes = [int(n) for n in sys.argv[4:]]
    emu = b.Emulator(url)
    subprocess.run(["rm", "-rf", cluster_dir], check=True)
    env_start = dict(os.environ, PBO_KUBE_CONTROLLER_MANAGER="0")
    started = time.monotonic()
    subprocess.run([os.path.join(CLUSTER, "start.sh"), cluster_dir], check=True, env=env_start,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"bench controller: kube-apiserver and etcd started in {time.monotonic() - started:.1f} s ({cluster_dir})", flush=True)
    results = []
    try:
        cluster = dict(line.strip().split("=", 1) for line in open(os.path.join(cluster_dir, "cluster.env")) if "=" in line)
        kubectl = os.path.join(cluster["KUBE_BIN"], "kubectl")
        kenv = dict(os.environ, KUBECONFIG=cluster["KUBECONFIG"])

        def k(*args: str) -> None:
            subprocess.run([kubectl, *args], env=kenv, check=True, stdout=subprocess.DEVNULL)

        with tempfile.TemporaryDirectory(prefix="pbo-bench-ctl-") as d:
            crds = os.path.join(d, "crds")
            subprocess.run([binary, "crd", "--dir", crds], check=True)
            k("apply", "--server-side", "-f", crds)
            k("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
            for n in sizes:
                results.append(measure(binary, emu, k, kubectl, kenv, cluster, d, n))
    finally:
        subprocess.run([os.path.join(CLUSTER, "stop.sh"), cluster_dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if len(results) >= 2:
        (n1, r1), (n2, r2) = results[0], results[-1]
        for key, label in (("initial", "after the initial sync"), ("restart", "after a restart over converged objects")):
            slope = (r2[key]["VmRSS"] - r1[key]["VmRSS"]) / (n2 - n1)
            fixed = r1[key]["VmRSS"] - slope * n1
            if slope <= 0:
                print(f"bench controller: {label}: resident memory did not grow between {n1:,} and {n2:,} objects")
                continue
            print(f"bench controller: {label}: resident memory per object (between {n1:,} and {n2:,} objects, "
                  f"{SETTLE} s idle): {slope:.2f} KiB; fixed part {b.mib(fixed)}; so 64 MiB hold about "
                  f"{max(0, (64 * 1024 - fixed) / slope):,.0f} objects, 256 MiB about {max(0, (256 * 1024 - fixed) / slope):,.0f}",
                  flush=True)
    return 0


def unsynced(kubectl: str, kenv: dict, ns: str) -> int:
    """Objects of the namespace without a status for their generation."""
    out = subprocess.run([kubectl, "get", KINDS, "-n", ns, "-o",
                          "jsonpath={range .items[*]}{.metadata.generation}/{.status.observedGeneration} {end}"],
                         env=kenv, check=True, stdout=subprocess.PIPE, text=True).stdout
    return sum(1 for pair in out.split() if pair.split("/")[0] != pair.split("/")[1])


KINDS = "payers.partnerbilling.io,pricingplans.partnerbilling.io,linkedaccounts.partnerbilling.io,billinggroups.partnerbilling.io"


def measure(binary, emu, k, kubectl, kenv, cluster, d, n) -> tuple[int, dict]:
    ns = f"bench-{n}"
    accounts, groups = b.mix(n)
    ids = emu.seed(accounts)
    manifests = os.path.join(d, ns)
    os.mkdir(manifests)
    b.write_docs(manifests, b.manifests(n, ids, ns))
    k("create", "namespace", ns)
    started = time.monotonic()
    k("create", "--save-config", "-f", manifests)
    head = f"bench controller: {n:,} objects ({accounts:,} LinkedAccounts, {groups} BillingGroups, a Payer, a PricingPlan)"
    print(f"{head}: created in the API server in {time.monotonic() - started:.1f} s", flush=True)
    counts = {"LinkedAccount": accounts, "BillingGroup": groups, "Payer": 1, "PricingPlan": 1}
    results = {}

    def reconciled_once(port: int) -> bool:
        return all((metric(port, f'partnerbilling_reconciles_total{{kind="{kind}"}}') or 0) >= count
                   for kind, count in counts.items())

    # 1. From nothing: every account adopted (owner tag written), every group and the plan created.
    checked = [0.0]

    def initial_done(port: int) -> bool:
        if not reconciled_once(port) or time.monotonic() - checked[0] < 15:
            return False
        checked[0] = time.monotonic()
        return unsynced(kubectl, kenv, ns) == 0

    results["initial"] = phase(binary, emu, cluster, ns, n, accounts, groups, head,
                               "initial sync (adopting every account, creating the groups)", initial_done)

    # 2. A restart over the converged objects: what the controller holds and does day to day.
    last = [None, 0.0]

    def restart_done(port: int) -> bool:
        if not reconciled_once(port):
            return False
        total = metric(port, "partnerbilling_reconciles_total")
        if total != last[0]:
            last[0], last[1] = total, time.monotonic()
            return False
        return time.monotonic() - last[1] >= QUIET

    results["restart"] = phase(binary, emu, cluster, ns, n, accounts, groups, head,
                               f"restart over the converged objects (done: every object reconciled, then no reconcile for {QUIET} s)",
                               restart_done)
    return n, results


def phase(binary, emu, cluster, ns, n, accounts, groups, head, label, done) -> dict:
    """Run the controller until `done(port)`; print and return its figures (and when the
    controller's ready gauge turned 1), then stop it."""
    emu.clear_requests()
    port = free_port()
    log = open(os.path.join(os.path.dirname(cluster["KUBECONFIG"]), f"operator-{ns}-{int(time.time())}.log"), "wb")
    env = dict(b.aws_env(emu.url), KUBECONFIG=cluster["KUBECONFIG"], POD_NAME=ns,
               POD_NAMESPACE=ns, PBO_LOG="info,kube=warn", PBO_LOG_FORMAT="text", NO_COLOR="1")
    argv = [binary, "run", f"--namespace={ns}", f"--metrics-addr=127.0.0.1:{port}", "--resync-seconds=3600"]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    pid = proc.pid
    ready = False
    gauge_at = None
    try:
        while time.monotonic() - started < READY_TIMEOUT:
            if proc.poll() is not None:
                raise SystemExit(f"{head}: the controller exited ({proc.returncode}); log: {log.name}")
            if gauge_at is None and metric(port, "partnerbilling_ready") == 1:
                gauge_at = time.monotonic() - started
            if done(port):
                ready = True
                break
            time.sleep(2)
        took = time.monotonic() - started
        if gauge_at is None and metric(port, "partnerbilling_ready") == 1:
            gauge_at = took
        at_done = b.proc_status(pid)
        cpu = b.proc_cpu(pid)
        total, by_op = emu.requests()
        reconciles = metric(port, "partnerbilling_reconciles_total") or 0
        failures = metric(port, "partnerbilling_reconcile_failures_total") or 0
        state = "done" if ready else f"NOT DONE after {READY_TIMEOUT} s"
        gauge = f"ready gauge 1 after {gauge_at:.0f} s" if gauge_at is not None else "ready gauge still 0"
        print(f"{head}: {label}: {state} after {took:.0f} s wall (machine shared; {gauge}); controller CPU {cpu:.1f} s "
              f"= {cpu / n * 1e6:,.0f} µs per object; VmRSS {b.mib(at_done['VmRSS'])} "
              f"({at_done['VmRSS'] / n:.2f} KiB per object), VmHWM (peak) {b.mib(at_done['VmHWM'])}; "
              f"{int(reconciles):,} reconciles, {int(failures):,} failed; {total:,} AWS calls "
              f"vs the formula ⌈{accounts + 1:,}/20⌉ + ⌈{groups}/100⌉ = {b.formula(accounts, groups)} (+ a small constant per payer)",
              flush=True)
        print(f"{head}: {label}: AWS calls by operation: {b.describe_calls(by_op, accounts, groups)}", flush=True)
        emu.clear_requests()
        time.sleep(SETTLE)
        settled = b.proc_status(pid)
        idle_cpu = b.proc_cpu(pid) - cpu
        idle_calls, _ = emu.requests()
        print(f"{head}: {label}: {SETTLE} s later: VmRSS {b.mib(settled['VmRSS'])} "
              f"({settled['VmRSS'] / n:.2f} KiB per object), VmHWM {b.mib(settled['VmHWM'])} (target: under 64 MiB); "
              f"{idle_cpu:.2f} s CPU and {idle_calls} AWS calls meanwhile", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return settled


if __name__ == "__main__":
    sys.exit(main())
