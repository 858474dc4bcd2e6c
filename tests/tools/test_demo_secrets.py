"""A full `make demo` run never shows a Secret's value.

The demo runs on a copy of examples/ whose Secret holds a recognisable secret access key, with
the operator logging at debug; the value must not appear in anything the demo prints (plan and
apply output, statuses as YAML, logs). The fault storm (tests/fault_storm.rs) and
tests/secret_redaction.rs check the same for the storm and for TRACE logs.
"""

import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLANTED = "planted-demo-secret-9Xq2LmZpR7vT"


class DemoSecrets(unittest.TestCase):
    def test_the_demo_never_prints_a_secret_value(self):
        with tempfile.TemporaryDirectory() as d:
            examples = pathlib.Path(d) / "examples"
            shutil.copytree(ROOT / "examples", examples)
            payer = examples / "payer.yaml"
            text = payer.read_text()
            self.assertIn("secretAccessKey: demo-only-not-a-real-secret-key", text)
            payer.write_text(text.replace("demo-only-not-a-real-secret-key", PLANTED))
            env = dict(os.environ, RUST_LOG="debug")
            run = subprocess.run(
                ["make", "--no-print-directory", "demo", f"EXAMPLES={examples}"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
            )
            out = run.stdout.decode("utf-8", "replace")
            self.assertEqual(run.returncode, 0, out[-3000:])
            # The demo really ran: statuses were printed and costs read.
            self.assertIn("Costs of Payer", out)
            self.assertIn("status:", out)
            self.assertNotIn(PLANTED, out)


if __name__ == "__main__":
    unittest.main()
