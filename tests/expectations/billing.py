"""Expectations for the billing faults in the fault run: none.

The fault run (tests/test_faults.py) uses model ``ref-1``, whose usage the reference counts with
its own toy tokenizer; the ``billing_*`` faults change only the bills of the OpenAI-named models
(``gpt-4o-mini``, ``gpt-4o``, ``gpt-4``), so on ref-1 they must change nothing.  What they do
to those models is tested in tests/test_reference_billing.py, and the billing family's own tests
(tests/test_billing.py) are what catch them, run on ``gpt-4o-mini``.
"""

from __future__ import annotations

from tests.expectations import Expect

#: fault → {check id: (outcome, fragment of the message)}: nothing changes on ref-1.
EXPECTED: dict[str, Expect] = {
    "billing_prompt_inflated": {},
    "billing_hidden_prompt": {},
    "billing_cl100k": {},
    "billing_completion_padded": {},
}
