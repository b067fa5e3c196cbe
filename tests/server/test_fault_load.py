"""Fault and load tests against `tailor serve` on loopback, bounded in time.

1. 1,000 malformed or hostile requests (bad JSON, huge numbers, deep nesting, invalid UTF-8, wrong types, bad
   HTTP, oversize bodies, schema bombs, slowloris partial bodies): 0 crashes, no 5xx except deliberate 503s, the
   server healthy after, no slot held.
2. 32 concurrent streaming clients for TAILOR_LOAD_SECONDS (default 10; a full run uses 60): every response
   complete ([DONE], the promised token count), no slot leaked (checked through /metrics).

Usage: test_fault_load.py TAILOR_BIN MODEL_CACHE_DIR"""
import concurrent.futures as cf
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_proc import ServerProc, args_or_die  # noqa: E402

MAX_BODY = 1 << 20
READ_TIMEOUT = 2


def raw_exchange(port, data, timeout=30.0, pause_after=None):
    """Sends bytes, returns (status or None, body bytes). pause_after: (n_bytes, seconds) slowloris."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if pause_after:
            n, secs = pause_after
            s.sendall(data[:n])
            time.sleep(secs)
            try:
                s.sendall(data[n:])
            except OSError:
                pass
        else:
            s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            chunks.append(b)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
        resp = b"".join(chunks)
    finally:
        s.close()
    if not resp.startswith(b"HTTP/1."):
        return None, resp
    return int(resp.split(b" ", 2)[1]), resp


def http_post(path, body_bytes, extra_headers=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body_bytes)).encode() + b"\r\n" +
            extra_headers + b"\r\n" + body_bytes)


def hostile_cases(model, rng, target):
    """(category, request bytes, kind) with kind 'http' (must get an HTTP answer) or 'any' (may be dropped)."""
    chat = "/v1/chat/completions"
    comp = "/v1/completions"
    msgs = [{"role": "user", "content": "hi"}]
    cases = []
    bad_json = [b"{", b"}", b"{\"model\":", b"nul", b"[1,2", b"{\"a\":1,}", b"{'model': 'x'}", b"\x00\x01\x02",
                b"{\"model\": \"" + model.encode() + b"\", \"messages\": [", b"{\"model\": NaN}", b"1e999",
                b"\"just a string\"", b"[]", b"null", b"{\"a\": \"\\ud800\"}", b"{\"a\": \"\\u12\"}",
                b"{" * 5000, b"[" * 200000 + b"]" * 200000]
    for b in bad_json:
        cases.append(("bad_json", http_post(rng.choice([chat, comp]), b), "http"))
    huge = ["1e999", "-1e999", "1e308", "123456789012345678901234567890", "-123456789012345678901234567890",
            "18446744073709551616", "9223372036854775807", "-9223372036854775808", "4294967297", "0.1e-400",
            "-0", "1.7976931348623157e309"]
    for field in ["max_tokens", "temperature", "top_p", "top_k", "seed", "presence_penalty", "min_p",
                  "frequency_penalty", "n", "max_completion_tokens", "grammar_finish_after"]:
        for h in huge:
            body = ('{"model": "%s", "messages": %s, "%s": %s, "max_tokens_hint": 1}'
                    % (model, json.dumps(msgs), field, h)).encode()
            if field not in ("max_tokens", "max_completion_tokens"):
                body = body.replace(b'"max_tokens_hint": 1', b'"max_tokens": 2')
            cases.append(("huge_number", http_post(chat, body), "http"))
    # Deep nesting, in every place a value can go.
    for depth in [65, 1000, 100000]:
        nest = "[" * depth + "]" * depth
        for where in ["content", "stop", "response_format", "extra", "prompt"]:
            if where == "content":
                body = '{"model": "%s", "messages": [{"role": "user", "content": %s}]}' % (model, nest)
            elif where == "prompt":
                body = '{"model": "%s", "prompt": %s}' % (model, nest)
            else:
                body = '{"model": "%s", "messages": %s, "%s": %s}' % (model, json.dumps(msgs), where, nest)
            cases.append(("deep_nesting", http_post(chat if where != "prompt" else comp, body.encode()), "http"))
    deep_schema = {"type": "object"}
    for _ in range(60):
        deep_schema = {"type": "object", "properties": {"x": deep_schema}, "required": ["x"]}
    cases.append(("deep_nesting", http_post(chat, json.dumps(
        {"model": model, "messages": msgs, "max_tokens": 4,
         "response_format": {"type": "json_schema", "json_schema": {"name": "d", "schema": deep_schema}}}).encode()),
        "http"))
    # Invalid UTF-8: inside strings, in keys, outside strings, overlong forms, lone surrogates (raw bytes).
    bad_utf8 = [b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3", b"\x80\x80",
                b"\xfe\xfe\xff\xff"]
    for b in bad_utf8:
        m = model.encode()
        cases.append(("invalid_utf8", http_post(chat, b'{"model": "' + m + b'", "messages": [{"role": "user", '
                                                b'"content": "a' + b + b'b"}]}'), "http"))
        cases.append(("invalid_utf8", http_post(chat, b'{"model": "' + m + b'", "messages": [], "k' + b + b'": 1}'),
                      "http"))
        cases.append(("invalid_utf8", http_post(comp, b'{"model": "' + m + b'", "prompt": "' + b + b'"}'), "http"))
        cases.append(("invalid_utf8", http_post(chat, b + b'{"model": "' + m + b'"}'), "http"))
        cases.append(("invalid_utf8", http_post(chat, b'{"model": "' + m + b'", "stop": ["' + b + b'"], '
                                                b'"messages": [{"role": "user", "content": "x"}]}'), "http"))
    # Schema bombs and nasty patterns: must be refused or compiled quickly, never crash.
    bombs = [
        {"type": "string", "pattern": "(a+)+$"}, {"type": "string", "pattern": "(a|aa)*b" * 20},
        {"type": "string", "pattern": "a{1000}{1000}"}, {"type": "string", "pattern": "[" * 50},
        {"type": "string", "pattern": "\\p{Zzzz}"}, {"type": "string", "pattern": "(?=x)"},
        {"type": "string", "minLength": 100000000}, {"type": "array", "minItems": 100000000},
        {"type": "integer", "minimum": 1e300, "maximum": -1e300}, {"enum": list(range(5000))},
        {"anyOf": [{"type": "string", "pattern": "x" * i} for i in range(1, 200)]},
        {"$ref": "#"}, {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}},
        {"type": "object", "properties": {str(i): {"type": "string"} for i in range(2000)}},
        {"type": "string", "format": "made-up"}, {"not": {"type": "string"}}, {"type": ["string", 5]},
        {"type": "string", "maxLength": -1}, {"allOf": [{"type": "string"}, {"type": "integer"}]},
    ]
    for k, b in enumerate(bombs):
        for route in [chat, comp] if k != 13 else [chat]:  # #13 takes seconds to refuse: once is enough
            body = {"model": model, "messages": msgs, "prompt": "p", "max_tokens": 8, "grammar_finish_after": 4,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "bomb", "schema": b}}}
            cases.append(("schema_bomb", http_post(route, json.dumps(body).encode()), "http"))
    # Broken HTTP.
    garbage = [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"POST /v1/chat/completions HTTP/9.9\r\n\r\n",
               b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n{}",
               b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}",
               b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
               b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
               b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
               b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
               b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
               b"GET /health HTTP/1.1\r\n" + b"X-H: v\r\n" * 2000 + b"\r\n",
               b"DELETE /v1/chat/completions HTTP/1.1\r\nConnection: close\r\n\r\n",
               b"GET /v1/chat/completions HTTP/1.1\r\nConnection: close\r\n\r\n",
               b"POST /../../etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n",
               b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS ClientHello
               os.urandom(512)]
    for g in garbage:
        cases.append(("bad_http", g, "any"))
    big = json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * (2 * MAX_BODY)}]}).encode()
    for _ in range(3):
        cases.append(("oversize", http_post(chat, big), "any"))  # 413, or dropped while we still send
    # Wrong types for every field.
    values = [None, True, False, 0, -1, 1.5, "", "x", [], [1], {}, {"a": 1}, [None], ["a", 1], "\u0000"]
    fields = ["model", "messages", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "max_tokens",
              "stream", "stream_options", "response_format", "n", "logprobs", "tools", "tool_choice", "logit_bias",
              "presence_penalty", "frequency_penalty", "chat_template_kwargs", "ignore_eos", "prompt", "echo",
              "suffix", "best_of", "max_completion_tokens", "grammar_finish_after"]
    while len(cases) < target:
        f = rng.choice(fields)
        body = {"model": model, "messages": msgs, "prompt": "hi", "max_tokens": 2}
        body[f] = rng.choice(values)
        if rng.random() < 0.3:  # nested wrong types
            body["messages"] = [{"role": rng.choice(["user", "system", "tool", 5, None, "assistant"]),
                                 "content": rng.choice(values + ["ok"])}]
        if rng.random() < 0.2:
            body["response_format"] = rng.choice([
                {"type": "json_schema"}, {"type": "json_schema", "json_schema": rng.choice(values)},
                {"type": "json_schema", "json_schema": {"name": "x", "schema": rng.choice(values)}},
                {"type": rng.choice(values)}, {"type": "json_object"}])
        cases.append(("wrong_type", http_post(rng.choice([chat, comp]), json.dumps(body).encode()), "http"))
    return cases


def slowloris_cases(port, model):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    full = http_post("/v1/chat/completions", body)
    head_end = full.index(b"\r\n\r\n")
    plans = []
    for i in range(20):
        kind = i % 4
        if kind == 0:
            plans.append(("slowloris", full, (head_end // 2, READ_TIMEOUT + 1.5)))  # stall inside the headers
        elif kind == 1:
            plans.append(("slowloris", full, (head_end + 4 + len(body) // 2, READ_TIMEOUT + 1.5)))  # inside the body
        elif kind == 2:
            plans.append(("slowloris", full, (head_end + 4, READ_TIMEOUT + 1.5)))  # headers, no body
        else:
            plans.append(("slowloris", full, (len(full), 0.0)))  # a normal one among them
    return plans


def fault_phase(srv):
    rng = random.Random(1234)
    slow = slowloris_cases(srv.port, srv.model)
    cases = hostile_cases(srv.model, rng, 1000 - len(slow))
    rng.shuffle(cases)
    results = {}
    problems = []
    slowest = []
    lock = threading.Lock()

    def run(case, pause=None):
        cat, data, kind = case if pause is None else (case[0], case[1], "slow")
        t_start = time.time()
        try:
            status, resp = raw_exchange(srv.port, data, timeout=60, pause_after=pause)
        except OSError as e:
            status, resp = None, repr(e).encode()
        with lock:
            slowest.append((time.time() - t_start, cat, status, data[:150]))
            results.setdefault(cat, {}).setdefault(status, 0)
            results[cat][status] += 1
            if status is not None and status >= 500 and status != 503:
                problems.append(f"{cat}: HTTP {status}: {resp[:300]!r}")
            if status is None and kind == "http":
                problems.append(f"{cat}: no HTTP answer ({resp[:120]!r}) to {data[:120]!r}")
            if status is not None and 400 <= status < 500 and b'"error"' not in resp and kind == "http":
                problems.append(f"{cat}: HTTP {status} without an error object: {resp[:200]!r}")

    t0 = time.time()
    with cf.ThreadPoolExecutor(16) as ex:
        slow_futs = [ex.submit(run, (c, d), p) for c, d, p in slow]
        time.sleep(0.5)
        # While the slowloris connections stall, the server still answers.
        h = requests.get(srv.url + "/health", timeout=5)
        if h.status_code != 200:
            problems.append(f"/health answered {h.status_code} during slowloris")
        futs = [ex.submit(run, c) for c in cases]
        for f in futs + slow_futs:
            f.result()
    n = sum(sum(v.values()) for v in results.values())
    print(f"fault phase: {n} hostile requests in {time.time() - t0:.1f} s")
    for cat in sorted(results):
        print(f"  {cat:14s} " + ", ".join(f"{k}: {v}" for k, v in sorted(results[cat].items(), key=str)))
    for secs, cat, status, head in sorted(slowest, key=lambda x: x[0], reverse=True)[:8]:
        print(f"  slowest: {secs:5.2f} s {cat} -> {status}: {head[:110]!r}")
    return n, problems


def stream_client(srv, stop_at, idx, stats, lock):
    rng = random.Random(idx)
    s = requests.Session()
    while time.time() < stop_at:
        n = rng.randint(8, 48)
        body = {"model": srv.model, "messages": [{"role": "user", "content": f"client {idx} says hi"}],
                "max_tokens": n, "ignore_eos": True, "stream": True, "seed": rng.randint(0, 1 << 30),
                "temperature": rng.choice([0, 0.7, 1.0])}
        done, finish, got_tokens, chunks = False, None, None, 0
        try:
            with s.post(srv.url + "/v1/chat/completions", json=body, stream=True, timeout=120) as r:
                if r.status_code == 503:
                    with lock:
                        stats["503"] += 1
                    time.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                if r.status_code != 200:
                    with lock:
                        stats["errors"].append(f"HTTP {r.status_code}: {r.text[:200]}")
                    continue
                for line in r.iter_lines():
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:]
                    if data == b"[DONE]":
                        done = True
                        break
                    j = json.loads(data)
                    if j.get("choices"):
                        chunks += 1
                        if j["choices"][0]["finish_reason"]:
                            finish = j["choices"][0]["finish_reason"]
                            got_tokens = j["usage"]["completion_tokens"]
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["errors"].append(f"client {idx} at {time.time() - stop_at + 0:.1f} s: {e!r}")
            continue
        with lock:
            if done and finish == "length" and got_tokens == n and chunks >= 2:
                stats["complete"] += 1
                stats["tokens"] += n
            else:
                stats["errors"].append(f"incomplete: done={done} finish={finish} tokens={got_tokens}/{n}")


def load_phase(srv, seconds, clients=32):
    stats = {"complete": 0, "tokens": 0, "503": 0, "errors": []}
    lock = threading.Lock()
    stop_at = time.time() + seconds
    t0 = time.time()
    threads = [threading.Thread(target=stream_client, args=(srv, stop_at, i, stats, lock)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    print(f"load phase: {clients} streaming clients for {seconds} s: {stats['complete']} complete responses, "
          f"{stats['tokens']} tokens ({stats['tokens'] / wall:.0f} tok/s), {stats['503']} x 503, "
          f"{len(stats['errors'])} errors")
    return stats


def wait_idle(srv, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.metric("tailor_slots_active") == 0 and srv.metric("tailor_queue_depth") == 0:
            return True
        time.sleep(0.1)
    return False


def main():
    tailor_bin, model_dir, _ = args_or_die()
    seconds = float(os.environ.get("TAILOR_LOAD_SECONDS", "10"))
    srv = ServerProc(tailor_bin, model_dir, ["--parallel", "8", "--ctx", "512", "--max-body", str(MAX_BODY),
                                             "--read-timeout", str(READ_TIMEOUT)])
    failures = []
    try:
        n, problems = fault_phase(srv)
        failures += problems[:20]
        if n < 1000:
            failures.append(f"only {n} hostile requests were sent")
        if not srv.alive():
            failures.append("the server died during the fault phase")
        else:
            if requests.get(srv.url + "/health", timeout=5).status_code != 200:
                failures.append("/health is not 200 after the fault phase")
            if not wait_idle(srv):
                failures.append("slots or queue still busy after the fault phase (leak)")
            stats = load_phase(srv, seconds)
            failures += stats["errors"][:20]
            if stats["complete"] < 32:
                failures.append(f"only {stats['complete']} streaming responses completed")
            if not srv.alive():
                failures.append("the server died during the load phase")
            elif not wait_idle(srv):
                failures.append(f"slot leak: slots_active={srv.metric('tailor_slots_active')} "
                                f"queue_depth={srv.metric('tailor_queue_depth')} after the load phase")
            else:
                print(f"after: slots_active 0, queue_depth 0, kv tokens {srv.metric('tailor_kv_cache_tokens'):.0f}")
                if srv.metric("tailor_kv_cache_tokens") != 0:
                    failures.append("KV tokens still counted after all requests ended")
    except Exception as ex:  # noqa: BLE001
        failures.append("test error: " + repr(ex))
    finally:
        code = srv.stop()
        if code != 0:
            failures.append(f"server exit code {code} after SIGTERM")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        print("server log (tail):\n" + srv.logs()[-3000:])
        sys.exit(1)
    print("ok: 0 crashes, 0 unexpected 5xx, healthy after, no slot leaked")


if __name__ == "__main__":
    main()
