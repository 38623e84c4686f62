"""The checks, one module per behaviour family; importing this package registers them all."""

from conformance.checks import (  # noqa: F401
    auth,
    billing,
    chat,
    consistency,
    errors,
    fidelity,
    fidelity_answers,
    json_mode,
    max_tokens,
    messages_api,
    models,
    n,
    params,
    sdk,
    stop,
    streaming,
    tools,
    usage,
    vision,
)
