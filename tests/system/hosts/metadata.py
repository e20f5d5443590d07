"""A cloud's instance metadata service, stood in for by tests/system/hosts.rs on
169.254.169.254:80 of the container that routes a runner host's traffic (off the host, as
on a cloud). It answers what the hosts ask: AWS IMDSv2's token, Azure IMDS's managed
identity token and the VM's resource id (the first argument); anything else gets a line of
text. Every request is printed, so the test sees who reached it."""

import http.server
import json
import sys

RESOURCE_ID = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        self.answer("stand-in-imds-token")

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/metadata/identity/oauth2/token":
            self.answer(json.dumps({"access_token": "stand-in-arm-token"}), "application/json")
        elif path == "/metadata/instance/compute/resourceId":
            self.answer(RESOURCE_ID)
        else:
            self.answer("stand-in metadata\n")

    def log_message(self, format, *args):
        print(f"metadata: {self.client_address[0]} {self.requestline}", flush=True)


http.server.ThreadingHTTPServer(("169.254.169.254", 80), Handler).serve_forever()
