"""A REST TOKEN Lambda authorizer for esb's authorizer tests, run as `python3 -m awslambdaric authorizer.handler`.

Tokens starting with `allow-` get an Allow for the whole API (so a cached decision serves every
route), `unauthorized` raises "Unauthorized" (401), `broken` raises another error (500), anything
else gets an explicit Deny. Each invocation appends its token to the file named by
`AUTHORIZER_LOG`, so tests can count invocations.
"""
import os


def handler(event, context):
    token = event["authorizationToken"]
    log = os.environ.get("AUTHORIZER_LOG")
    if log:
        with open(log, "a") as f:
            f.write(token + "\n")
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "broken":
        raise ValueError("authorizer bug")
    effect = "Allow" if token.startswith("allow-") else "Deny"
    api = event["methodArn"].split("/")[0]
    return {
        "principalId": "user-" + token,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": api + "/*"}
            ],
        },
        "context": {"tenant": "acme", "level": 3, "admin": True},
    }
