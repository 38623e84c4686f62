"""The reference provider: a faithful, local OpenAI-compatible chat API with switchable faults,
and a recording upstream a relay can be put in front of.

- :mod:`~conformance.reference.server`: :class:`~conformance.reference.server.ReferenceServer`
  (uvicorn in a thread) and :func:`~conformance.reference.server.serve` (blocking, for the CLI);
- :mod:`~conformance.reference.app`: the Starlette app (:func:`create_app`): routes,
  authentication, endpoints, the ``/__conformance`` control plane
  (https://platform.openai.com/docs/api-reference/chat);
- :mod:`~conformance.reference.chat_request` (validation) and
  :mod:`~conformance.reference.chat` (completions, chunks) for ``/v1/chat/completions``;
  :mod:`~conformance.reference.messages` for Anthropic's ``/v1/messages``;
- :mod:`~conformance.reference.streaming` (SSE bytes, cut streams),
  :mod:`~conformance.reference.envelopes` (error bodies),
  :mod:`~conformance.reference.headers` (OpenAI's response headers),
  :mod:`~conformance.reference.vision` (image URLs: own assets, downloads, refusals);
- :mod:`~conformance.reference.recording` (what each request received and answered) and
  :mod:`~conformance.reference.upstream_faults` (misbehaviours armed per marker);
- :mod:`~conformance.reference.faults`: the catalogue of deliberate deviations and legal quirks,
  and the served models;
- :mod:`~conformance.reference.model`: the scripted deterministic model, built on
  :mod:`~conformance.reference.conversation` (what it sees, its tokenizer),
  :mod:`~conformance.reference.knowledge` (what it knows) and
  :mod:`~conformance.reference.structured` (JSON answers, tool calls);
- :mod:`~conformance.reference.images`: test images and colour recognition.

Submodules are imported on demand so that reading the fault catalogue stays cheap.
"""

from __future__ import annotations
