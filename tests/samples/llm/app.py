"""AI-generated functions that call an LLM through the real openai client."""

import logging
import os
import sys

_client = []


def ask(model, text):
    if not _client:  # made at the first call: the by-hand mode runs without openai (Python 3.9)
        import openai

        _client.append(openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test-not-a-real-key-000000"))
    answer = _client[0].chat.completions.create(model=model, messages=[{"role": "user", "content": "CANARY-PROMPT " + text}])
    return answer.choices[0].message.content


# AI-generated: Claude, 2026-01-01, prompt: "summarize a text"
def summarize(text):
    return ask("m-small", text)


# AI-generated: GPT-4, 2026-01-02
def classify(text):
    return ask("m-large", text)


# AI-generated: Copilot, 2026-01-03
def outer(text):
    return inner(text).upper()


# AI-generated: Copilot, 2026-01-03
def inner(text):
    return ask("m-small", text)


# AI-generated: Claude, 2026-01-04
def hand_made_llm_span():
    """An LLM library aiotel cannot configure: content set by hand, as such a library would."""
    from opentelemetry import trace

    tracer = trace.get_tracer("some.llm.library")
    with tracer.start_as_current_span("chat m-small", attributes={"gen_ai.operation.name": "chat"}) as span:
        span.set_attribute("gen_ai.request.model", "m-small")
        span.set_attribute("gen_ai.input.messages", "CANARY-PROMPT by hand")
        span.set_attribute("llm.output_messages.0.message.content", "CANARY-ANSWER by hand")
        span.set_attribute("http.request.header.authorization", "Bearer sk-abcdefghijklmnopqrstuvwxyz123456")
        span.add_event("gen_ai.user.message", {"content": "CANARY-PROMPT in an event"})
        span.set_attribute("gen_ai.usage.input_tokens", 5)
        span.set_attribute("gen_ai.usage.output_tokens", 3)
        from opentelemetry._logs import LogRecord, get_logger

        get_logger("some.llm.library").emit(LogRecord(
            event_name="gen_ai.client.inference.operation.details", body={"content": "CANARY-ANSWER in a log body"},
            attributes={"gen_ai.output.messages": "CANARY-ANSWER in a log attribute", "gen_ai.request.model": "m-small"}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "calls":
        for _ in range(3):
            summarize("a long text")
        for _ in range(2):
            classify("a ticket")
        outer("nested")
        ask("m-large", "outside every marked function")
    elif mode == "by-hand":
        hand_made_llm_span()
    elif mode == "fork":  # two calls, then a child that makes one of its own
        hand_made_llm_span()
        hand_made_llm_span()
        if os.fork() == 0:
            hand_made_llm_span()
            sys.exit(0)  # its exit flush sends its own counts
        os.wait()
    elif mode == "logging":
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("shop").warning("APP-LOG-LINE from the program")
        summarize("a text")
    if sys.argv[2:] == ["serve"]:  # serve /metrics until the test closes stdin
        print("ready", flush=True)
        sys.stdin.read()
    print("done")
