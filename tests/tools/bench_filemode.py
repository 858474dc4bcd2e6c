"""`make bench`, part 3: peak memory and wall time of `plan` and `apply` over N objects.

  bench_filemode.py BIN URL N

Seeds an organization with N-1 accounts in the emulator at URL, writes N manifests (a Payer
and one adopting LinkedAccount per account) and runs BIN plan, BIN apply and BIN plan again
under /usr/bin/time, printing wall time and peak resident memory of each.
"""

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import boto3

KEY = "AKIAPBOBENCH00000002"
SECRET = "pbo-bench-filemode-secret"


def control(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{url}/_emulator/{path}", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def main() -> int:
    binary, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    control(url, "reset", {})
    orgs = boto3.client("organizations", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    orgs.create_organization(FeatureSet="ALL")
    ids = control(url, "services/organizations/bulk-accounts", {"count": n - 1})["accountIds"]
    with tempfile.TemporaryDirectory() as d:
        docs = [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": "bench"},
             "stringData": {"accessKeyId": KEY, "secretAccessKey": SECRET}},
            {"apiVersion": "partnerbilling.io/v1alpha1", "kind": "Payer",
             "metadata": {"name": "acme", "namespace": "bench"},
             "spec": {"accountId": "123456789012", "credentials": {"secretRef": {"name": "aws"}}}},
        ]
        for i, account in enumerate(ids):
            docs.append({"apiVersion": "partnerbilling.io/v1alpha1", "kind": "LinkedAccount",
                         "metadata": {"name": f"a{i:05d}", "namespace": "bench"},
                         "spec": {"payerRef": {"name": "acme"}, "adopt": {"accountId": account}}})
        with open(os.path.join(d, "objects.yaml"), "w") as f:
            f.write("".join(f"---\n{json.dumps(doc)}\n" for doc in docs))
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        for step in ("plan", "apply", "plan"):
            out = os.path.join(d, "time.txt")
            proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out, binary, step, "-f", d, "-o", "json"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            seconds, kib = open(out).read().split()[-2:]
            report = json.loads(proc.stdout or b"{}")
            objects = report.get("objects", [])
            ready = sum(1 for o in objects if o.get("ready"))
            changes = sum(len(o.get("changes", [])) for o in objects)
            print(f"bench filemode: {step} over {n} objects: {float(seconds):.1f} s wall, peak RSS {int(kib) / 1024:.0f} MiB "
                  f"({int(kib) / n:.1f} KiB per object); exit {proc.returncode}; {ready} ready, {changes} changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
