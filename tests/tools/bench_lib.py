"""Shared parts of the scale benchmarks (`make bench-scale`): the emulator's control API, the
objects a partner at N objects has, and the operator run as a child process whose own CPU time
and memory are read from the kernel.

The objects for N: one Payer, one PricingPlan, G = N/20 BillingGroups and A = N - 2 - G
LinkedAccounts that adopt A accounts of the organization (seeded in the emulator); group g is
priced with the plan, its primary account is the account of LinkedAccount g*k and its members
the next k-1 (k = A // G), by account id, so every group has k accounts and (nearly) every
account is in a group. (By id, not by LinkedAccount name: `plan` does not resolve a name to
the adopted account's id, so a group naming its accounts would only say "waits" in a plan and
make none of its calls.) At
1,000 objects: 948 accounts, 50 groups; at 10,000: 9,498 accounts, 500 groups.

What the figures count:
- AWS calls: the emulator's request counter, cleared before each step. The emulator pages every
  list as AWS does (Organizations 20 per page, Billing Conductor 100: tests/emulator/README.md).
- Operator CPU: user + sys time of the operator process alone (the child's rusage from wait4,
  or /proc/PID/stat for the controller), never the emulator's or the API server's. On a loaded
  machine CPU seconds are stable where wall times are not.
- Peak RSS: ru_maxrss of the child (its VmHWM).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.request

KEY = "AKIAPBOBENCH00000002"
SECRET = "pbo-bench-filemode-secret"
REGION = "us-east-1"
MANAGEMENT = "123456789012"


# ---- the emulator -------------------------------------------------------------------------

class Emulator:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=900) as resp:
            return json.loads(resp.read() or b"{}")

    def seed(self, accounts: int) -> list[str]:
        """A fresh organization (management account MANAGEMENT) with `accounts` ACTIVE members."""
        import boto3  # in the emulator's virtualenv

        self.control("POST", "reset", {})
        orgs = boto3.client("organizations", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        orgs.create_organization(FeatureSet="ALL")
        return self.control("POST", "services/organizations/bulk-accounts", {"count": accounts})["accountIds"]

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def requests(self) -> tuple[int, dict[str, int]]:
        """Total and counts by `service:Operation` since the last clear."""
        v = self.control("GET", "requests")
        return v["total"], {f'{c["service"]}:{c["operation"]}': c["count"] for c in v["counts"]}


def aws_env(url: str) -> dict:
    return dict(os.environ, AWS_ENDPOINT_URL=url, AWS_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
                AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)


# ---- the objects --------------------------------------------------------------------------

def mix(n: int) -> tuple[int, int]:
    """(accounts, groups) for n objects (one Payer and one PricingPlan besides)."""
    groups = max(1, n // 20)
    return n - 2 - groups, groups


def manifests(n: int, ids: list[str], namespace: str) -> list[dict]:
    """The Secret and the n objects (see the module's doc)."""
    accounts, groups = mix(n)
    assert len(ids) >= accounts
    per_group = accounts // groups
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": namespace},
         "stringData": {"accessKeyId": KEY, "secretAccessKey": SECRET}},
        {"apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
         "metadata": {"name": "acme", "namespace": namespace},
         "spec": {"accountId": MANAGEMENT, "credentials": {"secretRef": {"name": "aws"}}}},
        {"apiVersion": "partnerbilling.io/v1alpha1", "kind": "PricingPlan",
         "metadata": {"name": "plan", "namespace": namespace},
         "spec": {"payerRef": {"name": "acme"},
                  "rules": [{"name": "markup", "scope": "GLOBAL", "type": "MARKUP", "modifierPercentage": 10}]}},
    ]
    name = lambda i: f"a{i:05d}"  # noqa: E731
    for i in range(accounts):
        docs.append({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
                     "metadata": {"name": name(i), "namespace": namespace,
                                  "labels": {"customer": f"c{min(i // per_group, groups - 1):04d}"}},
                     "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": ids[i]}}})
    for g in range(groups):
        first = g * per_group
        docs.append({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "BillingGroup",
                     "metadata": {"name": f"g{g:04d}", "namespace": namespace},
                     "spec": {"payerRef": {"name": "acme"}, "primaryAccount": ids[first],
                              "accounts": [ids[i] for i in range(first + 1, first + per_group)],
                              "pricingPlanRef": {"name": "plan"}}})
    return docs


def write_docs(directory: str, docs: list[dict], per_file: int = 500) -> None:
    """Multi-document YAML (JSON is YAML), 500 documents to a file: file mode parses a file with
    a budget of YAML nodes."""
    for i in range(0, len(docs), per_file):
        with open(os.path.join(directory, f"objects-{i // per_file:03d}.yaml"), "w") as f:
            f.write("".join(f"---\n{json.dumps(doc)}\n" for doc in docs[i:i + per_file]))


# ---- the figures --------------------------------------------------------------------------

def formula(accounts: int, groups: int) -> int:
    """Pages of one listing of the organization's accounts (the management account included)
    and one of the billing groups: the issue's target, before its small constant per payer."""
    return math.ceil((accounts + 1) / 20) + math.ceil(groups / 100)


# One listing of each, in pages, given the organization's accounts and the groups. Used to say
# how many times a list was read in one step.
def listing_pages(accounts: int, groups: int) -> dict[str, int]:
    org = accounts + 1
    members = (accounts // groups) * groups
    return {
        "organizations:ListAccounts": math.ceil(org / 20),
        "organizations:ListAccountsForParent": math.ceil(org / 20),
        # FullAWSAccess is attached to the root and every account.
        "organizations:ListTargetsForPolicy": math.ceil((org + 1) / 20),
        "billingconductor:ListBillingGroups": math.ceil(groups / 100),
        "billingconductor:ListBillingGroupCostReports": math.ceil(groups / 100),
        "billingconductor:ListAccountAssociations": math.ceil(members / 100),
    }


def describe_calls(by_op: dict[str, int], accounts: int, groups: int) -> str:
    """`Operation count` by count, with how many listings or how many per account/group."""
    pages = listing_pages(accounts, groups)
    parts = []
    for op, count in sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0])):
        note = ""
        if op in pages and pages[op]:
            note = f" = {count / pages[op]:.1f} listings of {pages[op]} pages"
        elif count >= accounts // 2:
            note = f" = {count / accounts:.2f}/account"
        elif groups and count >= groups // 2 and count > 10:
            note = f" = {count / groups:.2f}/group"
        service, name = op.split(":", 1)
        if sum(1 for o in by_op if o.split(":", 1)[1] == name) > 1:
            name = f"{service}:{name}"
        parts.append(f"{name} {count}{note}")
    return "; ".join(parts)


def run_measured(argv: list[str], env: dict, stdout_path: str) -> dict:
    """Run argv as a child, stdout to stdout_path, stderr discarded; its own rusage from wait4."""
    import subprocess

    started = time.monotonic()
    with open(stdout_path, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "user": ru.ru_utime, "sys": ru.ru_stime,
            "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss, "wall": time.monotonic() - started}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def proc_cpu(pid: int) -> float:
    """user + sys seconds of PID (its own threads; /proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
