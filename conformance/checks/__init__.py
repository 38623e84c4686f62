"""The checks, one module per behaviour family; importing this package registers them all."""

from conformance.checks import (  # noqa: F401
    auth,
    chat,
    errors,
    max_tokens,
    models,
    stop,
    streaming,
    usage,
)
