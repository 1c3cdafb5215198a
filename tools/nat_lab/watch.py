"""`make watch`: the function served locally the way Lambda runs it, until Ctrl-C.

`cargo lambda watch --only-lambda-apis` on 127.0.0.1:9000 (where `make invoke` and `cargo lambda
invoke` look by default) emulates the Lambda control plane; the function is the binary `make bin`
built, so the AWS SDK is not compiled a second time with other features (plain `cargo lambda watch`
would). The function reads NAT_ASG_HOOK_CONFIG from the file given and reaches AWS as this shell
does (set AWS_ENDPOINT_URL for an emulator)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import hook

PORT = 9000  # cargo lambda's default


def main() -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="the hook's configuration (NAT_ASG_HOOK_CONFIG), e.g. terraform output -raw hook_config")
    args = parser.parse_args()
    logs = hook.REPO / "target" / "watch"
    with hook.LambdaWatch(dict(os.environ), args.config.read_text(), logs, port=PORT) as served:
        print(f"nat-asg-hook served on 127.0.0.1:{PORT}; its logs: {served.function_log_path}; Ctrl-C stops it", flush=True)
        try:
            served.function.wait()
        except KeyboardInterrupt:
            return 0
    print(f"the function exited ({served.function.returncode}); see {served.function_log_path}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
