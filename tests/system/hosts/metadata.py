"""A cloud's instance metadata service, stood in for by tests/system/hosts.rs on
169.254.169.254:80 of a container on the host's route to it (off the host, as on a cloud).
It answers what the hosts ask:

- AWS IMDSv2: the session token, and with it the instance role's temporary credentials;
- Azure IMDS: a managed identity's token (for Resource Manager: the VM's own; for Key
  Vault: the identity whose client id is the second argument), the VM's resource id (the
  first argument).

Anything else gets a line of text. Every request is printed, so the test sees who reached
it. The credentials and tokens are the stand-ins' own; clouds.py checks them.

    metadata.py RESOURCE_ID CLIENT_ID [ADDRESS]

It listens on ADDRESS:80, 169.254.169.254 unless given.
"""

import http.server
import json
import sys
import urllib.parse

IMDS_TOKEN = "stand-in-imds-token"
ROLE = "rcb-stand-in-role"
ACCESS_KEY = "ASIASTANDIN00000000"
SECRET_KEY = "stand-in-secret-access-key"
SESSION_TOKEN = "stand-in-session-token"
ARM_TOKEN = "stand-in-arm-token"
VAULT_TOKEN = "stand-in-vault-token"


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, body, content_type="text/plain", status=200):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        self.answer(IMDS_TOKEN)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        query = urllib.parse.parse_qs(query)
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            # IMDSv2 only, as the hosts' metadata_options require.
            if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
                return self.answer("", status=401)
            role = path.removeprefix("/latest/meta-data/iam/security-credentials/")
            if role == "":
                return self.answer(ROLE)
            credentials = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": ACCESS_KEY,
                           "SecretAccessKey": SECRET_KEY, "Token": SESSION_TOKEN,
                           "Expiration": "2099-01-01T00:00:00Z"}
            return self.answer(json.dumps(credentials), "application/json")
        if path == "/metadata/identity/oauth2/token":
            resource = query.get("resource", [""])[0].rstrip("/")
            if resource == "https://vault.azure.net":
                if query.get("client_id", [""])[0] != sys.argv[2]:
                    return self.answer(json.dumps({"error": "invalid_request"}), "application/json", 400)
                token = VAULT_TOKEN
            else:
                token = ARM_TOKEN
            return self.answer(json.dumps({"access_token": token}), "application/json")
        if path == "/metadata/instance/compute/resourceId":
            return self.answer(sys.argv[1])
        self.answer("stand-in metadata\n")

    def log_message(self, format, *args):
        print(f"metadata: {self.client_address[0]} {self.requestline}", flush=True)


if __name__ == "__main__":
    address = sys.argv[3] if len(sys.argv) > 3 else "169.254.169.254"
    http.server.ThreadingHTTPServer((address, 80), Handler).serve_forever()
