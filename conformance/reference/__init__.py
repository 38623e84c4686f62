"""The reference provider: a faithful, local OpenAI-compatible chat API with switchable faults.

- :mod:`conformance.reference.server`: :class:`~conformance.reference.server.ReferenceServer`
  (uvicorn in a thread) and :func:`~conformance.reference.server.serve` (blocking, for the CLI);
- :mod:`conformance.reference.app`: the Starlette app implementing the OpenAI Chat Completions
  API (https://platform.openai.com/docs/api-reference/chat);
- :mod:`conformance.reference.faults`: the catalogue of deliberate deviations and legal quirks;
- :mod:`conformance.reference.model`: the scripted deterministic model and its tokenizer;
- :mod:`conformance.reference.images`: test images and colour recognition.

Submodules are imported on demand so that reading the fault catalogue stays cheap.
"""

from __future__ import annotations
