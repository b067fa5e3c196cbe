"""Real clients against `tailor serve`: curl, python3-requests and the official OpenAI Node SDK, each doing a
chat, a stream and a json_schema request. Usage: test_clients.py TAILOR_BIN MODEL_CACHE_DIR SOURCE_DIR"""
import json
import os
import subprocess
import sys

import jsonschema
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_proc import ServerProc, args_or_die  # noqa: E402

ANSWER = {
    "properties": {"name": {"title": "Name", "type": "string"}, "value": {"title": "Value", "type": "integer"}},
    "required": ["name", "value"], "title": "Answer", "type": "object",
}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sse_payloads(text):
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def run_curl(srv):
    def curl(*args):
        r = subprocess.run(["curl", "-sS", "--max-time", "60", *args], capture_output=True, text=True)
        check(r.returncode == 0, f"curl exit code {r.returncode} {r.stderr.strip()}")
        return r.stdout

    out = json.loads(curl(srv.url + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
                          json.dumps({"model": srv.model, "max_tokens": 8, "seed": 1,
                                      "messages": [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "Hello"}]})))
    check(out["choices"][0]["message"]["role"] == "assistant", "curl chat: assistant message")
    check(out["usage"]["completion_tokens"] <= 8, "curl chat: usage within max_tokens")
    stream = curl("-N", srv.url + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
                  json.dumps({"model": srv.model, "max_tokens": 8, "seed": 1, "stream": True, "ignore_eos": True,
                              "messages": [{"role": "user", "content": "Hello"}]}))
    payloads = sse_payloads(stream)
    check(payloads and payloads[-1] == "[DONE]", "curl stream: ends with [DONE]")
    text = "".join(json.loads(p)["choices"][0]["delta"].get("content", "")
                   for p in payloads[:-1] if json.loads(p).get("choices"))
    nonstream = json.loads(curl(srv.url + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
                                json.dumps({"model": srv.model, "max_tokens": 8, "seed": 1, "ignore_eos": True,
                                            "messages": [{"role": "user", "content": "Hello"}]})))
    check(text == nonstream["choices"][0]["message"]["content"], "curl stream: chunks == non-streamed text")
    out = json.loads(curl(srv.url + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
                          json.dumps({"model": srv.model, "max_tokens": 200, "seed": 2, "grammar_finish_after": 30,
                                      "messages": [{"role": "user", "content": "JSON"}],
                                      "response_format": {"type": "json_schema",
                                                          "json_schema": {"name": "Answer", "schema": ANSWER}}})))
    doc = json.loads(out["choices"][0]["message"]["content"])
    jsonschema.validate(doc, ANSWER)
    check(True, "curl json_schema: valid Answer " + json.dumps(doc)[:80])
    code = curl("-o", "/dev/null", "-w", "%{http_code}", srv.url + "/v1/chat/completions", "-d", "{bad json")
    check(code == "400", f"curl malformed JSON -> 400 (got {code})")


def run_requests(srv):
    s = requests.Session()
    r = s.post(srv.url + "/v1/chat/completions", timeout=60,
               json={"model": srv.model, "max_tokens": 8, "seed": 3,
                     "messages": [{"role": "system", "content": "You are terse."},
                                  {"role": "user", "content": "Hi"}]})
    check(r.status_code == 200 and r.json()["object"] == "chat.completion", "requests chat: 200 chat.completion")
    check(set(r.json()["timings"]) >= {"queue_ms", "prompt_ms", "decode_ms"}, "requests chat: timings object")
    body = {"model": srv.model, "max_tokens": 16, "seed": 4, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": "Count"}]}
    chunks, usage = [], None
    with s.post(srv.url + "/v1/chat/completions", json=body, stream=True, timeout=60) as resp:
        check(resp.headers.get("Content-Type", "").startswith("text/event-stream"), "requests stream: SSE type")
        for line in resp.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            j = json.loads(data)
            if j["choices"]:
                chunks.append(j["choices"][0]["delta"].get("content", ""))
            elif j.get("usage"):
                usage = j["usage"]
    check(usage is not None and usage["completion_tokens"] == 16, "requests stream: include_usage chunk")
    body.pop("stream")
    body.pop("stream_options")
    ref = s.post(srv.url + "/v1/chat/completions", json=body, timeout=60).json()
    check("".join(chunks) == ref["choices"][0]["message"]["content"], "requests stream: chunks == non-streamed")
    r = s.post(srv.url + "/v1/completions", timeout=60,
               json={"model": srv.model, "prompt": ["a", "b", "c", "d"], "max_tokens": 200, "seed": 5,
                     "grammar_finish_after": 30,
                     "response_format": {"type": "json_schema", "json_schema": {"name": "Answer", "schema": ANSWER}}})
    check(r.status_code == 200 and len(r.json()["choices"]) == 4, "requests completions: 4 choices")
    for c in r.json()["choices"]:
        jsonschema.validate(json.loads(c["text"]), ANSWER)
    check(True, "requests json_schema: 4 valid Answers")
    e = s.post(srv.url + "/v1/chat/completions", timeout=60, json={"model": "other", "messages": []}).json()
    check(set(e["error"]) == {"message", "type", "param", "code"}, "requests: OpenAI error shape")


def run_node(srv, source_dir):
    modules = os.path.join(source_dir, "third_party", "npm", "node_modules")
    if not os.path.isdir(os.path.join(modules, "openai")):
        check(False, f"OpenAI Node SDK missing at {modules}/openai (run scripts/setup.sh)")
        return
    env = dict(os.environ, NODE_PATH=modules, TAILOR_URL=srv.url + "/v1", TAILOR_MODEL=srv.model)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_client.cjs")
    r = subprocess.run(["node", script], capture_output=True, text=True, env=env, timeout=180)
    print(r.stdout, end="")
    print(r.stderr, end="", file=sys.stderr)
    check(r.returncode == 0, f"OpenAI Node SDK script exit code {r.returncode}")


def main():
    tailor_bin, model_dir, source_dir = args_or_die()
    srv = ServerProc(tailor_bin, model_dir, ["--parallel", "4", "--ctx", "1024"])
    try:
        run_curl(srv)
        run_requests(srv)
        run_node(srv, source_dir)
        check(srv.metric("tailor_slots_active") == 0, "no slot held after the clients finished")
    except Exception as ex:  # report, then still stop the server
        failures.append(repr(ex))
        print("FAIL", repr(ex))
    finally:
        code = srv.stop()
        check(code == 0, f"server exit code {code} after SIGTERM")
    if failures:
        print("server log:\n" + srv.logs()[-4000:])
        sys.exit(f"{len(failures)} check(s) failed")


if __name__ == "__main__":
    main()
