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


def chatty(event, context):
    """Prints a marker on stdout and another on stderr (for X-Amz-Log-Type: Tail), then answers."""
    import sys
    marker = event.get("marker", "no-marker") if isinstance(event, dict) else "no-marker"
    print(f"stdout says {marker}")
    print(f"stderr says {marker}", file=sys.stderr)
    return {"marker": marker}
