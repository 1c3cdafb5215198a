"""The patched moto server: `python -m nat_lab.moto_shims.server --port P [--data-plane]`.

What `nat_lab.moto.Moto` starts for the tests, the demo, the benchmarks and the lab (the lab with
`--data-plane`: `nat_lab.lab.motoserver`'s behaviour and its `/lab-api/state` feed). At start it
applies every patch by name, serves moto's own application on 127.0.0.1:P, drives each patched
behaviour once through that HTTP API (`selfcheck`), resets the emulator, and only then answers
`GET /nat-lab/ready` with 200. A patch that does not hold ends the process with exit status 3 and a
message naming the moto version and the patch (`ShimError`), within seconds.

Beside moto's API it serves `GET /nat-lab/lifecycle-actions?region=R&account=A` (the lifecycle
ledger, see `lifecycle`), outside moto's request routing, which knows only AWS's operations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import urllib.parse
import urllib.request

from nat_lab.constants import ACCOUNT, REGION

from . import ShimError, install, moto_version, selfcheck


class Front:
    """The application in front of moto's: readiness and the lifecycle ledger; everything else is moto's."""

    def __init__(self, app) -> None:
        self.app = app
        self.ready = False

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/nat-lab/ready":
            return self._json(start_response, "200 OK" if self.ready else "503 Service Unavailable", {"ready": self.ready})
        if path == "/nat-lab/lifecycle-actions":
            from . import lifecycle

            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            region = query.get("region", [REGION])[0]
            account = query.get("account", [ACCOUNT])[0]
            return self._json(start_response, "200 OK", lifecycle.listing(account, region))
        return self.app(environ, start_response)

    @staticmethod
    def _json(start_response, status: str, body: dict):
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def fail(error: ShimError) -> None:
    print(f"nat_lab moto server: {error}", file=sys.stderr, flush=True)
    os._exit(3)


def post(url: str, data: bytes = b"") -> None:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-plane", action="store_true", help="the data-plane lab's behaviour and its /lab-api/state feed")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    lab = None
    if args.data_plane:
        from nat_lab.lab import motoserver as lab
    try:
        install({"lab.data-plane": lab.install} if lab else None)
    except ShimError as error:
        fail(error)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    front = Front(lab.LabApp(app) if lab else app)
    server = make_server("127.0.0.1", args.port, front, threaded=True)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    endpoint = f"http://127.0.0.1:{args.port}"
    post(f"{endpoint}/moto-api/reset-auth", b"inf")  # the self-check is not the users' IAM story
    try:
        selfcheck.run(endpoint, data_plane=lab is not None)
    except ShimError as error:
        fail(error)
    post(f"{endpoint}/moto-api/reset")
    post(f"{endpoint}/moto-api/reset-auth", os.environ.get("INITIAL_NO_AUTH_ACTION_COUNT", "inf").encode())
    if lab:
        lab.start_ticker()
    front.ready = True
    print(f"nat_lab moto server: moto {moto_version()}, every patch checked, on {endpoint}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
