"""For the moto server of tests/test_deploy_policies.py, which enforces IAM while Terraform applies
the whole stack. Python imports this module at start-up when this directory is on PYTHONPATH.

- First, nat_lab's fidelity fixes (tools/nat_lab/moto_shims), which the stack's tests always load.
- moto recomputes the SigV4 signature of every request it authorizes, and for Lambda's REST API it
  computes it over another request than the SDK signed: every Lambda call fails with
  SignatureDoesNotMatch, whatever the policy. For Lambda only, the signature comparison is skipped;
  the access key is still looked up and every action still authorized against the user's policies,
  which is what the test is about.
"""

from __future__ import annotations

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "tools" / "nat_lab" / "moto_shims" / "sitecustomize.py"))


def _lambda_signatures() -> None:
    from moto.iam.access_control import IAMRequestBase

    check_signature = IAMRequestBase.check_signature

    def patched(self) -> None:
        if self._service != "lambda":
            check_signature(self)

    IAMRequestBase.check_signature = patched


try:
    _lambda_signatures()
except ImportError:  # not the moto server's interpreter
    pass
