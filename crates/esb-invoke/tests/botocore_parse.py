"""Feeds responses rendered by esb-invoke to a real botocore Lambda client and reports what boto3
code would see: the exception class and its parsed fields, or the parsed invoke result.

stdin: a JSON list of {"status", "headers": [[k, v]], "body_b64"}; stdout: a JSON list of results.
"""
import base64
import io
import json
import sys

import botocore.session
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

cases = json.load(sys.stdin)
session = botocore.session.get_session()
client = session.create_client(
    "lambda",
    region_name="us-east-1",
    endpoint_url="http://127.0.0.1:9999",
    aws_access_key_id="AKID",
    aws_secret_access_key="secret",
    config=Config(retries={"max_attempts": 0}),
)
current = {}


def respond(request, **_):
    c = current["case"]
    body = base64.b64decode(c["body_b64"])
    headers = {k: v for k, v in c["headers"]}
    raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=c["status"], preload_content=False
    )
    return AWSResponse(request.url, c["status"], headers, raw)


client.meta.events.register("before-send.lambda", respond)

out = []
for case in cases:
    current["case"] = case
    try:
        r = client.invoke(FunctionName="f", Payload=b"{}")
        out.append(
            {
                "ok": {
                    "StatusCode": r["StatusCode"],
                    "FunctionError": r.get("FunctionError"),
                    "LogResult": r.get("LogResult"),
                    "ExecutedVersion": r.get("ExecutedVersion"),
                    "Payload": r["Payload"].read().decode(),
                }
            }
        )
    except client.exceptions.ClientError as e:
        err = e.response["Error"]
        out.append(
            {
                "error": {
                    "class": type(e).__name__,
                    "modeled": type(e) is not client.exceptions.ClientError,
                    "Code": err.get("Code"),
                    "Message": err.get("Message"),
                    "Type": e.response.get("Type"),
                    "Reason": e.response.get("Reason"),
                    "retryAfterSeconds": e.response.get("retryAfterSeconds"),
                    "HTTPStatusCode": e.response["ResponseMetadata"]["HTTPStatusCode"],
                }
            }
        )
json.dump(out, sys.stdout)
