// The official OpenAI Node SDK against tailor: a chat, a stream and a json_schema request.
// Env: TAILOR_URL (http://127.0.0.1:PORT/v1), TAILOR_MODEL; NODE_PATH points at third_party/npm/node_modules.
const OpenAI = require("openai");

const client = new OpenAI({ baseURL: process.env.TAILOR_URL, apiKey: "unused", maxRetries: 0, timeout: 60000 });
const model = process.env.TAILOR_MODEL;
let failed = 0;
function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + "node: " + what);
  if (!cond) failed++;
}

const answer = {
  type: "object",
  properties: { name: { type: "string" }, value: { type: "integer" } },
  required: ["name", "value"],
};

(async () => {
  const chat = await client.chat.completions.create({
    model,
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Hello" },
    ],
    max_tokens: 8,
    seed: 1,
  });
  check(chat.choices[0].message.role === "assistant", "chat returns an assistant message");
  check(chat.usage.completion_tokens <= 8, "chat usage within max_tokens");

  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Stream please" }],
    max_tokens: 12,
    seed: 2,
    stream: true,
    ignore_eos: true,
  });
  let text = "";
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.choices.length) {
      text += chunk.choices[0].delta?.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  check(chunks >= 3 && finish === "length", `stream: ${chunks} chunks, finish_reason ${finish}`);
  const same = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Stream please" }],
    max_tokens: 12,
    seed: 2,
    ignore_eos: true,
  });
  check(text === same.choices[0].message.content, "stream text == non-streamed text (same seed)");

  const js = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Answer in JSON" }],
    max_tokens: 200,
    seed: 3,
    grammar_finish_after: 30,
    response_format: { type: "json_schema", json_schema: { name: "Answer", schema: answer, strict: true } },
  });
  const doc = JSON.parse(js.choices[0].message.content);
  check(typeof doc.name === "string" && Number.isInteger(doc.value) && Object.keys(doc).length === 2,
        "json_schema: " + js.choices[0].message.content.slice(0, 60));

  try {
    await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
    check(false, "unknown model is refused");
  } catch (e) {
    check(e.status === 404 && e.code === "model_not_found", "unknown model -> 404 model_not_found (SDK error)");
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error("node: unexpected error:", e);
  process.exit(2);
});
