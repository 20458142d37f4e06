"""Drive `hermes serve` with the official Anthropic and OpenAI Python SDKs.

Usage: sdk_client.py ACTION BASE_URL KEY [ARGS...]; prints one JSON object on stdout.
An SDK exception is reported as {"error": class name, "status": code, "message": text}.
`sdk_client.py serve` answers such requests read from stdin, one JSON line each (the tests use
one such process for the whole run).
"""

import concurrent.futures
import functools
import json
import sys

import anthropic
import openai


# One client per gateway and key, as a program would keep one: making one costs ~35 ms of CPU
# (its TLS context), more than the request it sends to a loopback gateway.
@functools.lru_cache(maxsize=None)
def anthropic_client(base, key):
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=60)


@functools.lru_cache(maxsize=None)
def openai_client(base, key):
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)


def messages(base, key, model, stream="no", system=None):
    c = anthropic_client(base, key)
    kwargs = dict(model=model, max_tokens=200, messages=[{"role": "user", "content": "hello gateway"}])
    if system:
        kwargs["system"] = system
    if stream == "stream":
        with c.messages.stream(**kwargs) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        return {"text": text, "stop": final.stop_reason, "usage": [final.usage.input_tokens, final.usage.output_tokens]}
    m = c.messages.create(**kwargs)
    return {"text": m.content[0].text, "stop": m.stop_reason, "usage": [m.usage.input_tokens, m.usage.output_tokens]}


def chat(base, key, model, stream="no", system=None):
    c = openai_client(base, key)
    msgs = [{"role": "user", "content": "hello gateway"}]
    if system:
        msgs.insert(0, {"role": "system", "content": system})
    if stream == "stream":
        text, stop, usage = "", None, None
        for chunk in c.chat.completions.create(
            model=model, messages=msgs, max_tokens=200, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.usage:
                usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
            for ch in chunk.choices:
                text += ch.delta.content or ""
                stop = ch.finish_reason or stop
        return {"text": text, "stop": stop, "usage": usage}
    r = c.chat.completions.create(model=model, messages=msgs, max_tokens=200)
    return {
        "text": r.choices[0].message.content,
        "stop": r.choices[0].finish_reason,
        "usage": [r.usage.prompt_tokens, r.usage.completion_tokens],
    }


def chat_tools(base, key, model):
    c = openai_client(base, key)
    tools = [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]
    c.chat.completions.create(model=model, messages=[{"role": "user", "content": "time?"}], tools=tools)
    return {"error": None}


def models(base, key):
    return {
        "anthropic": [m.id for m in anthropic_client(base, key).models.list()],
        "openai": [m.id for m in openai_client(base, key).models.list()],
    }


def concurrent_streams(base, key, model, n):
    def one(_):
        return messages(base, key, model, "stream")["text"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=int(n)) as pool:
        texts = list(pool.map(one, range(int(n))))
    return {"texts": texts}


def disconnect(base, key, model):
    """Read the first streamed event, then drop the connection."""
    c = anthropic_client(base, key)
    with c.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": "hi"}]) as s:
        for event in s:
            return {"first": event.type}
    return {"first": None}


ACTIONS = {
    "messages": messages,
    "chat": chat,
    "chat-tools": chat_tools,
    "models": models,
    "concurrent-streams": concurrent_streams,
    "disconnect": disconnect,
}

def run(action, args):
    try:
        return ACTIONS[action](*args)
    except (anthropic.APIStatusError, openai.APIStatusError) as e:
        return {"error": type(e).__name__, "status": e.status_code, "message": str(e)}
    except (anthropic.APIError, openai.APIError) as e:
        # An error inside a stream: no status, the error event's body.
        return {"error": type(e).__name__, "status": None, "message": str(e), "body": repr(e.body)}


def serve():
    """One request per stdin line, {"id", "action", "args"}, each answered on its own thread
    with one stdout line {"id", "result"} (or {"id", "crash"}): the SDKs are imported once per
    test run instead of once per request."""
    import threading
    import traceback

    out = threading.Lock()

    def answer(req):
        try:
            reply = {"id": req["id"], "result": run(req["action"], req["args"])}
        except Exception:
            reply = {"id": req["id"], "crash": traceback.format_exc()}
        with out:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()

    for line in sys.stdin:
        if line.strip():
            threading.Thread(target=answer, args=(json.loads(line),), daemon=True).start()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        print(json.dumps(run(sys.argv[1], sys.argv[2:])))
