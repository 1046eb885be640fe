"""A Lambda REQUEST authorizer for esb's authorizer tests, run as `python3 -m awslambdaric request_authorizer.handler`.

Allows requests whose `x-tenant` header starts with `ok-`. A payload format 2.0 event gets a
simple response (`isAuthorized` + context, which may hold any JSON); a REST / 1.0 event gets an
IAM policy for the whole API (Allow or an explicit Deny). Each invocation appends its event, as
one JSON line, to the file named by `AUTHORIZER_LOG`, so tests can count invocations and check
what the authorizer saw.
"""
import json
import os


def handler(event, context):
    log = os.environ.get("AUTHORIZER_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(event) + "\n")
    headers = event.get("headers") or {}
    tenant = next((v for k, v in headers.items() if k.lower() == "x-tenant"), "")
    allowed = tenant.startswith("ok-")
    if event.get("version") == "2.0":
        return {
            "isAuthorized": allowed,
            "context": {"tenant": tenant, "tags": ["a", "b"], "seen": {"routeKey": event["routeKey"]}},
        }
    api = event["methodArn"].split("/")[0]
    return {
        "principalId": "tenant-" + tenant,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if allowed else "Deny",
                    "Resource": api + "/*",
                }
            ],
        },
        "context": {"tenant": tenant},
    }
