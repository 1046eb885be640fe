"""An API Gateway proxy function in Python (awslambdaric): the example config's `hello-py`."""
import json
import os


def hello(event, context):
    """Greets the caller by the user name esb's Cognito-style authorizer put in the event."""
    ctx = event.get("requestContext") or {}
    authorizer = ctx.get("authorizer") or {}
    user = authorizer.get("cognito:username") or ((authorizer.get("claims") or {}).get("cognito:username"))
    body = {
        "message": "hello from python",
        "user": user,
        "path": event.get("path") or event.get("rawPath"),
        "requestId": context.aws_request_id,
        "pid": os.getpid(),
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
