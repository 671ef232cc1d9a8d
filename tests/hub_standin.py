"""Loopback HTTP stand-ins. `Hub`: the Hugging Face Hub's upload API, for testing `medzoo push` without the network:
enough of `/api/repos/create`, `/api/validate-yaml`, `preupload` and `commit` for huggingface_hub's `create_repo` +
`upload_folder` with files sent inline (the stand-in answers "regular" to every preupload, never LFS). `Proxy`: a
forward proxy that answers every HEAD 200 and records its request lines."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Served:
    """A server on 127.0.0.1 (a free port) in a daemon thread; `url` is its address."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and close the socket: afterwards nothing listens at `url`."""
        self.server.shutdown()
        self.server.server_close()


class Hub(_Served):
    """Started on construction (127.0.0.1, a free port); `url` is its endpoint, `files` what was committed."""

    def __init__(self) -> None:
        self.repos: set[str] = set()
        self.files: dict[str, bytes] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def _send(self, code: int, obj: object) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                base = f"http://{self.headers['Host']}"
                if self.path == "/api/repos/create":
                    p = json.loads(data)
                    repo = f"{p['organization']}/{p['name']}" if p.get("organization") else p["name"]
                    hub.repos.add(repo)
                    return self._send(200, {"url": f"{base}/{repo}"})
                if self.path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                parts = self.path.split("/")  # /api/models/ORG/NAME/{preupload|commit}/REVISION
                if len(parts) == 7 and parts[5] == "preupload":
                    files = json.loads(data)["files"]
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if len(parts) == 7 and parts[5] == "commit":
                    for line in data.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._send(200, {"commitUrl": f"{base}/{parts[3]}/{parts[4]}/commit/{'a' * 40}",
                                            "commitOid": "a" * 40, "pullRequestUrl": None})
                return self._send(404, {"error": f"the stand-in does not know {self.path}"})

        self._serve(Handler)


class Proxy(_Served):
    """Started on construction; `seen` holds the request lines it answered."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
                proxy.seen.append(self.requestline)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._serve(Handler)
