"""Two exception trees, kept apart on purpose (as schemathesis does).

*Findings* are what a check concludes about a provider: :class:`Failure` (a deviation from the
OpenAI spec), :class:`Unsupported` (the feature was declined with a well-formed error) and
:class:`NotApplicable` (no verdict is owed: not configured, or a control showed the check could
not prove anything).  ``Failure`` subclasses ``AssertionError`` so that pytest, JUnit and allure
report it as a *failed* test rather than a *broken* one.

*Suite faults* derive from :class:`SuiteError`: the suite could not reach a verdict (network
failure, timeout, bad configuration, a bug in the suite).  They map to the ``error`` outcome and
are never used for a provider's wrong answer (docs/CONTRACT.md, "Outcomes").
"""

from __future__ import annotations


class Finding(Exception):
    """Base of the verdicts a check may raise; ``message`` is one line.

    ``event`` optionally names the stream event the verdict is about, as ``(exchange id,
    index in that exchange's events)``; the engine writes it to the result's
    ``evidence.event`` and the matrix highlights that event (docs/CONTRACT.md).
    """

    def __init__(self, message: str, *, event: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.event = event

    def __str__(self) -> str:
        return self.message


class Failure(Finding, AssertionError):
    """The provider deviates from the spec (outcome ``fail``)."""


class MalformedAnswer(Failure):
    """The provider answered, but not in HTTP/1.1 a client can read (RFC 9112): an illegal
    status or header line, conflicting ``Content-Length`` headers, a response head past the
    suite's 100 KiB.  A finding about the provider (outcome ``fail``), though the transport
    raises it where any other failure to get an answer is a :class:`TransportError`;
    ``exchange`` holds the redacted record of the request."""

    exchange: object | None = None


class Unsupported(Finding):
    """The provider declined the feature with a well-formed 4xx error (outcome ``unsupported``)."""


class NotApplicable(Finding):
    """No verdict is owed (outcome ``skip``): not configured, or inconclusive by its control."""


class SuiteError(Exception):
    """Base of every fault of the suite or its environment (outcome ``error``)."""


class ConfigError(SuiteError):
    """providers.yaml (or a command line value) is invalid.

    Rendered as one line ``file:line: key: problem`` and exit status 2.
    """

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.problem}"


class TransportError(SuiteError):
    """No HTTP answer could be had (connect failure, timeout, broken stream).

    Raised only by :mod:`conformance.transport`, which maps httpx's exceptions to these once, at
    the boundary, with secrets already redacted from the message.  ``exchange`` holds the
    (redacted) record of what was sent and what, if anything, came back.
    """

    exchange: object | None = None


class ConnectFailed(TransportError):
    """The provider could not be reached."""


class RequestTimeout(TransportError):
    """The provider did not answer within the configured timeout."""


class StreamStalled(TransportError):
    """An event stream went silent for longer than the stall timeout."""


class InternalError(SuiteError):
    """A bug in the suite itself (an unexpected exception inside a check)."""
