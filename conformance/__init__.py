"""conformance: a pytest-based conformance suite for OpenAI-compatible chat APIs."""

__version__ = "0.1.0"
