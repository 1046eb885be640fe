"""Signs Lambda Invoke requests with botocore exactly as boto3 sends them, for esb-sigv4's tests.

Prints a JSON list of the captured requests: the client is real, the clock is pinned, and the
request is intercepted just before it would be sent.
"""
import base64
import datetime
import json
import sys

import botocore.auth
import botocore.session
from botocore.config import Config

PINNED = datetime.datetime(2026, 11, 22, 7, 0, 0)
botocore.auth.get_current_datetime = lambda *a, **k: PINNED


class Captured(Exception):
    pass


def capture(request, **_):
    raise Captured(
        {
            "method": request.method,
            "url": request.url,
            "headers": [[k, v.decode() if isinstance(v, bytes) else v] for k, v in request.headers.items()],
            "body_b64": base64.b64encode(
                request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            ).decode(),
        }
    )


def client(token=None, region="us-east-1"):
    session = botocore.session.get_session()
    c = session.create_client(
        "lambda",
        region_name=region,
        endpoint_url="http://127.0.0.1:9999",
        aws_access_key_id="AKIDESBTEST",
        aws_secret_access_key="esb/secret+KEY/0123456789abcdefghij",
        aws_session_token=token,
        config=Config(retries={"max_attempts": 0}),
    )
    c.meta.events.register("before-send.lambda", capture)
    return c


CASES = [
    ("name", {}, dict(FunctionName="orders", Payload=b'{"orderId": 7}')),
    ("alias", {}, dict(FunctionName="orders:live", Payload=b"{}")),
    (
        "arn-qualifier",
        {},
        dict(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:orders",
            Qualifier="$LATEST",
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=b'{"a": [1, 2, 3]}',
        ),
    ),
    ("partial-arn", {}, dict(FunctionName="123456789012:function:orders", Payload=b"")),
    (
        "event-context",
        {},
        dict(
            FunctionName="mail",
            InvocationType="Event",
            ClientContext=base64.b64encode(b'{"custom": {"k": "v"}}').decode(),
            Payload=bytes(range(256)),
        ),
    ),
    ("dry-run", {}, dict(FunctionName="orders", InvocationType="DryRun")),
    ("session-token", {"token": "FQoGZXIvYXdzEXAMPLE//token=="}, dict(FunctionName="orders", Payload=b"1")),
    ("other-region", {"region": "eu-west-3"}, dict(FunctionName="orders", Payload=b"[]")),
]

out = []
for name, client_args, params in CASES:
    try:
        client(**client_args).invoke(**params)
    except Captured as c:
        req = c.args[0]
        req["name"] = name
        out.append(req)
json.dump(out, sys.stdout)
