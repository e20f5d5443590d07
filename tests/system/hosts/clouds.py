"""The clouds' APIs that the hosts call, stood in for by tests/system/hosts.rs on port 443
(the test's own certificate, which the hosts trust; their names point here):

- Azure Resource Manager (management.azure.com): accepts the deallocation a runner VM asks
  for with its managed identity's token;
- SSM (ssm.<region>.amazonaws.com): GetParameter of the secrets in the JSON file given,
  signed (SigV4, verified here) with the credentials the metadata stand-in hands out;
- Key Vault (<vault>.vault.azure.net): the secrets of the vaults in that file, for the
  vault token the metadata stand-in gives the runners' identity.

Everything else is refused. Each request is printed, so the test sees who asked for what.

    clouds.py CERT KEY SECRETS_JSON
    SECRETS_JSON: {"ssm": {REGION: {NAME: VALUE}}, "keyvault": {VAULT: {NAME: VALUE}}}
"""

import hashlib
import hmac
import http.server
import json
import ssl
import sys

from metadata import ACCESS_KEY, ARM_TOKEN, SECRET_KEY, SESSION_TOKEN, VAULT_TOKEN



def secrets():
    """The secrets file, read afresh: the test writes it once it knows the stacks' values."""
    with open(sys.argv[3]) as file:
        return json.load(file)


def sigv4_problem(method, path, headers, body, region):
    """Why the request's AWS Signature Version 4 is not the stand-in credentials' for SSM in
    REGION, or None when it is."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key, date, scope_region, service, terminator = fields["Credential"].split("/")
    if key != ACCESS_KEY:
        return f"signed with the access key {key}"
    if (scope_region, service, terminator) != (region, "ssm", "aws4_request"):
        return f"signed for {scope_region}/{service}/{terminator}, not {region}/ssm"
    if headers.get("X-Amz-Security-Token") != SESSION_TOKEN:
        return "without the session token"
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return f"host and x-amz-date are not signed: {signed}"
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    path, _, query = path.partition("?")
    canonical = "\n".join([
        method, path, query, canonical_headers, fields["SignedHeaders"], hashlib.sha256(body).hexdigest(),
    ])
    amz_date = headers.get("X-Amz-Date", "")
    scope = f"{date}/{region}/ssm/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing = ("AWS4" + SECRET_KEY).encode()
    for part in [date, region, "ssm", "aws4_request"]:
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return "the signature does not match"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def host(self):
        return self.headers.get("Host", "").split(":")[0]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = self.host()
        if host == "management.azure.com":
            token = self.headers.get("Authorization", "")
            ok = self.path.split("?")[0].endswith("/deallocate") and token == f"Bearer {ARM_TOKEN}"
            print(f"arm: {'accepted' if ok else 'refused'} POST {self.path}", flush=True)
            return self.answer(202 if ok else 403)
        if host.startswith("ssm.") and host.endswith(".amazonaws.com"):
            region = host.split(".")[1]
            problem = sigv4_problem("POST", self.path, self.headers, body, region)
            target = self.headers.get("X-Amz-Target", "")
            request = json.loads(body or b"{}")
            name = request.get("Name", "")
            value = secrets().get("ssm", {}).get(region, {}).get(name)
            if problem is None and target != "AmazonSSM.GetParameter":
                problem = f"not GetParameter but {target!r}"
            if problem is None and not request.get("WithDecryption"):
                problem = "without WithDecryption (a SecureString would come back encrypted)"
            if problem is None and value is None:
                print(f"ssm: no parameter {name} in {region}", flush=True)
                return self.answer(400, json.dumps({"__type": "ParameterNotFound"}).encode(),
                                   "application/x-amz-json-1.1")
            if problem is not None:
                print(f"ssm: refused GetParameter {name} in {region}: {problem}", flush=True)
                return self.answer(403, json.dumps({"__type": "AccessDeniedException", "message": problem}).encode(),
                                   "application/x-amz-json-1.1")
            print(f"ssm: GetParameter {name} in {region}", flush=True)
            parameter = {"Name": name, "Type": "SecureString", "Value": value, "Version": 1}
            return self.answer(200, json.dumps({"Parameter": parameter}).encode(), "application/x-amz-json-1.1")
        print(f"clouds: refused POST {host}{self.path}", flush=True)
        self.answer(403)

    def do_GET(self):
        host = self.host()
        if host.endswith(".vault.azure.net"):
            vault = host.split(".")[0]
            name = self.path.split("?")[0].removeprefix("/secrets/")
            value = secrets().get("keyvault", {}).get(vault, {}).get(name)
            if self.headers.get("Authorization") != f"Bearer {VAULT_TOKEN}":
                print(f"keyvault: refused {vault}/{name}: not the vault token", flush=True)
                return self.answer(401)
            if value is None:
                print(f"keyvault: no secret {vault}/{name}", flush=True)
                return self.answer(404)
            print(f"keyvault: get {vault}/{name}", flush=True)
            return self.answer(200, json.dumps({"value": value, "id": f"https://{host}/secrets/{name}"}).encode())
        print(f"clouds: refused GET {host}{self.path}", flush=True)
        self.answer(403)

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
