"""Python test functions for esb-rie's conformance tests, run as `python3 -m awslambdaric handler.<fn>`."""
import time


def echo(event, context):
    """Returns the event unchanged."""
    return event


def error(event, context):
    """Raises, so the runtime posts /invocation/{id}/error."""
    raise ValueError("boom from python")


def sleep(event, context):
    """Sleeps `sleep_ms` (default 2000) milliseconds, then answers."""
    ms = 2000
    if isinstance(event, dict) and "sleep_ms" in event:
        ms = int(event["sleep_ms"])
    time.sleep(ms / 1000.0)
    return {"slept_ms": ms}
