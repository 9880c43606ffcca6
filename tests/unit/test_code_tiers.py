"""domain.code_tiers: the tier 1-4 heuristic behind `router:code:*` (2.11)."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.code_tiers import LENGTH_STEPS, MAX_SCAN_CHARS, classify, prompt_text, signals


def chat(*texts, **extra):
    return {"model": "router:code", "messages": [{"role": "user", "content": t} for t in texts],
            **extra}


def refactoring_prompt(files=6, lines_per_file=64, fenced=True):
    """About 400 lines: a multi-file refactoring request with each file pasted in a block."""
    parts = ["Refactor these modules to share one repository layer and keep the tests green."]
    for i in range(files):
        parts.append(f"src/app/module_{i}.py:")
        body = [f"def handler_{i}_{j}(request):  # line {j}" for j in range(lines_per_file)]
        parts += ["```python", *body, "```"] if fenced else ["", *body, ""]
    return "\n".join(parts)


def test_one_line_reverse_a_string_is_tier_1():
    assert classify(chat("Write a function that reverses a string.")) == 1


def test_400_line_multi_file_refactoring_is_tier_3_or_more():
    prompt = refactoring_prompt()
    assert 380 <= prompt.count("\n") <= 420
    assert classify(chat(prompt)) >= 3
    # Without fences the length and the file names alone still make it complex.
    assert classify(chat(refactoring_prompt(fenced=False))) >= 3


def test_the_two_prompts_get_different_tiers():
    assert classify(chat("reverse a string in python")) != classify(chat(refactoring_prompt()))


def test_one_pasted_function_is_moderate():
    code = "\n".join(f"    total += values[{i}] * weights[{i}]" for i in range(40))
    assert classify(chat(f"Why is this slow?\n```python\n{code}\n```")) == 2


def test_stack_traces_are_counted():
    python = ('Traceback (most recent call last):\n  File "/srv/app/main.py", line 3, in <module>\n'
              "ValueError: boom")
    js = "TypeError: x is undefined\n    at foo (/app/a.js:1:2)\n    at bar (/app/b.js:3:4)\n"
    go = "panic: runtime error: index out of range\n\ngoroutine 1 [running]:"
    assert signals(chat(python))["stack_traces"] == 1
    assert signals(chat(js))["stack_traces"] == 1  # one run of frames is one trace
    assert signals(chat(python, js, go))["stack_traces"] == 3
    # Two traces across three files in a medium prompt: complex.
    assert classify(chat(python + "\n" + js + "\nsee also src/util.ts\n" + "x" * 600)) >= 3


def test_file_paths_are_counted_once_each():
    s = signals(chat("edit src/a/b.py, then src/a/b.py again, /etc/app/config.yaml and main.go"))
    assert s["files"] == 3


def test_fenced_blocks_counted_unclosed_fence_counts():
    assert signals(chat("```\na\n```\n~~~\nb\n~~~"))["code_blocks"] == 2
    assert signals(chat("```\nnever closed"))["code_blocks"] == 1
    assert signals(chat("inline ``` fence"))["code_blocks"] == 0


def test_tool_definitions_raise_the_tier():
    tools = [{"type": "function", "function": {"name": f"t{i}"}} for i in range(4)]
    base = chat("x" * LENGTH_STEPS[0])  # 1 point
    assert classify(base) == 1
    assert classify({**base, "tools": tools}) == 2


def test_length_ladder_boundary():
    assert signals(chat("y" * LENGTH_STEPS[1]))["length"] == LENGTH_STEPS[1]
    assert classify(chat("y" * (LENGTH_STEPS[1] - 1))) == 1  # 1 point
    assert classify(chat("y" * LENGTH_STEPS[1])) == 2  # 2 points


def test_anthropic_and_responses_shapes_are_read():
    anthropic = {"system": "You are a reviewer.",
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "fix main.go"},
                                                           {"type": "image", "source": {}}]}]}
    assert "fix main.go" in prompt_text(anthropic) and "reviewer" in prompt_text(anthropic)
    responses = {"input": [{"role": "user", "content": [{"type": "input_text",
                                                          "text": "see lib/x.rs"}]}]}
    assert signals(responses)["files"] == 1
    assert prompt_text({"prompt": "plain completion"}) == "plain completion"


def test_huge_prompt_is_bounded_and_fast():
    start = time.perf_counter()
    s = signals(chat("a/" * 300_000, "b." * 300_000, "    at x\n" * 50_000))
    assert s["length"] <= MAX_SCAN_CHARS
    assert time.perf_counter() - start < 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "content", "text", "messages", "tools", "input", "system",
                         "prompt", "type"]), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_body_gets_a_tier_and_never_raises(body):
    assert classify(body) in (1, 2, 3, 4)
    if isinstance(body, dict):
        assert classify({"messages": [body]}) in (1, 2, 3, 4)
