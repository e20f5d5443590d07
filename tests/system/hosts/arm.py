"""Azure Resource Manager, stood in for by tests/system/hosts.rs at management.azure.com:443
(the test's own certificate, which the Azure host trusts): it accepts and prints the
deallocation a runner VM asks for with its managed identity's token, and refuses anything
else."""

import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        token = self.headers.get("Authorization", "")
        ok = self.path.split("?")[0].endswith("/deallocate") and token == "Bearer stand-in-arm-token"
        print(f"arm: {'accepted' if ok else 'refused'} POST {self.path}", flush=True)
        self.send_response(202 if ok else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
