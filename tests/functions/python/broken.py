"""A handler module that fails at import, so awslambdaric reports /runtime/init/error."""
raise RuntimeError("broken on purpose at import time")


def fn(event, context):
    return event
