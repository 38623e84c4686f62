"""Expectations for the tools family (function calling)."""

from __future__ import annotations

from tests.expectations import Expect

_NO_CALL = "no tool call to judge"

#: fault → {check id: (outcome, fragment of the message)}; every other tools check must pass.
EXPECTED: dict[str, Expect] = {
    # Without tools the model answers in text: tools.auto fails, the checks that judge its
    # calls or use it as their control say why they cannot judge.
    "drop_tools": {
        "tools.auto": ("fail", "no tool call under tool_choice auto"),
        "tools.call_shape": ("skip", _NO_CALL),
        "tools.finish_reason": ("skip", _NO_CALL),
        "tools.parallel": ("skip", _NO_CALL),
        "tools.choice_none": ("skip", "inconclusive: the model does not call the tool"),
        "tools.parallel_disabled": ("skip", "inconclusive: the model makes 0 call(s)"),
        "tools.choice_required": ("fail", "tool_choice required ignored"),
        "tools.choice_named": ("fail", "named tool_choice 'get_time' ignored"),
        "tools.stream_index": ("skip", "inconclusive"),
        "tools.stream_once": ("skip", "no streamed tool call to judge"),
        "tools.stream_arguments": ("skip", "no streamed tool call to judge"),
    },
    "tool_choice_ignored": {
        "tools.choice_none": ("fail", "tool_choice none ignored: the model called get_weather"),
        "tools.choice_required": ("fail", "tool_choice required ignored"),
        "tools.choice_named": ("fail", "named tool_choice ignored: called ['get_weather'"),
    },
    "named_choice_as_required": {
        "tools.choice_named": ("fail", "named tool_choice ignored: called ['get_weather'"),
    },
    "tool_finish_stop": {
        "tools.finish_reason": ("fail", "finish_reason is 'stop' for a message with tool_calls"),
        "tools.stream_arguments": ("fail", "stream finish_reason is 'stop' after tool calls"),
    },
    "tool_call_empty_id": {
        "tools.call_shape": ("fail", "tool_calls[0]: id is ''"),
        "tools.stream_once": ("fail", "no delta carries its id"),
    },
    "no_parallel_tool_calls": {
        "tools.parallel": ("fail", "parallel tool calls: expected 2 calls (Paris and Tokyo), "
                                   "got 1"),
        "tools.parallel_disabled": ("skip", "inconclusive: the model makes 1 call(s)"),
    },
    "ignore_parallel_tool_calls": {
        "tools.parallel_disabled": ("fail", "parallel_tool_calls false ignored: 2 calls"),
    },
    "stream_tool_no_index": {
        "tools.stream_index": ("fail", "have no integer 'index'"),
    },
    "stream_tool_same_index": {
        "tools.stream_index": ("fail", "two calls share index 0"),
    },
    "stream_tool_name_repeated": {
        "tools.stream_once": ("fail", "streamed call 0: id sent in"),
    },
    "stream_tool_args_cumulative": {
        "tools.stream_arguments": ("fail", "(fragments concatenated): arguments is not valid "
                                           "JSON"),
    },
    "drop_tool_results": {
        "tools.round_trip": ("fail", "tool result ignored: the answer does not mention the "
                                     "returned temperature 23"),
        "tools.legacy_round_trip": ("fail", "function result ignored"),
    },
    "ignore_functions": {
        "tools.legacy_functions": ("fail", "functions ignored: no function_call"),
    },
    "reject_functions": {
        "tools.legacy_functions": ("unsupported", "legacy functions declined: HTTP 400"),
        "tools.legacy_round_trip": ("unsupported", "function role declined: HTTP 400"),
    },
    "functions_as_tool_calls": {
        "tools.legacy_functions": ("fail", "answered in the tool_calls form instead of "
                                           "message.function_call"),
    },
    # Listed with {} in core.py; its effects on this family:
    "tool_args_object": {
        "tools.call_shape": ("fail", "arguments is a JSON object, expected a string of JSON"),
        "tools.stream_arguments": ("fail", "an arguments delta is a JSON object"),
        "tools.legacy_functions": ("fail", "function_call: arguments is a JSON object"),
    },
    # A core streaming fault: the tool-call stream has no finish_reason either.
    "stream_no_finish_reason": {
        "tools.stream_arguments": ("fail", "stream finish_reason is None after tool calls"),
    },
}
