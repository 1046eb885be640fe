"""Test functions for esb's async (Event) invocations and chained invocations.

`record` appends the event's `id` to the file named by RECORD_FILE (one O_APPEND write per line,
so concurrent environments never interleave) and fails when the event says `fail`. `chain` calls
another function through esb's own Invoke API with plain boto3, as a deployed function would.
"""
import json
import os


def record(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail: %s" % event.get("id"))
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, ("%s\n" % event["id"]).encode())
    finally:
        os.close(fd)
    return {"recorded": event["id"]}


def chain(event, context):
    import boto3

    client = boto3.client("lambda")
    r = client.invoke(FunctionName=event.get("target", "echo"), Payload=json.dumps(event.get("payload", {})).encode())
    return {
        "status": r["StatusCode"],
        "function_error": r.get("FunctionError"),
        "payload": json.loads(r["Payload"].read()),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL_LAMBDA"),
    }
