// The backend suite: what a Python LLM library's local-backend tests ask of a server, against a random-weight
// model (tiny Qwen3 preset, real Qwen3 tokenizer and chat template). Random weights make the text noise, so
// the checks are about the contract: shapes, counts, validity by construction, determinism, concurrency.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <thread>

#include "server_test_util.h"
#include "tokenizer/chat_template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tailor::testing {
namespace {

using Clock = std::chrono::steady_clock;

const char* kEmailSchema = R"({
  "$defs": {
    "Person": {
      "properties": {
        "name": {"title": "Name", "type": "string"},
        "email_address": {"pattern": "[a-zA-Z]{5,10}@example\\.com", "title": "Email Address", "type": "string"}
      },
      "required": ["name", "email_address"], "title": "Person", "type": "object"
    }
  },
  "properties": {
    "to": {"$ref": "#/$defs/Person"},
    "subject": {"title": "Subject", "type": "string"},
    "body": {"title": "Body", "type": "string"}
  },
  "required": ["to", "subject", "body"], "title": "Email", "type": "object"
})";

const char* kAnswerSchema = R"({
  "properties": {"name": {"title": "Name", "type": "string"}, "value": {"title": "Value", "type": "integer"}},
  "required": ["name", "value"], "title": "Answer", "type": "object"
})";

Json json_schema_format(const char* name, const char* schema) {
  return {{"type", "json_schema"},
          {"json_schema", {{"name", name}, {"schema", Json::parse(schema)}, {"strict", true}}}};
}

class Backend : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerConfig cfg;
    cfg.parallel = 4;
    cfg.n_ctx = 1024;
    srv_ = TestServer::start(cfg).release();
    ASSERT_NE(srv_, nullptr);
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;

  Json chat(Json messages, Json extra = Json::object()) {
    Json body = {{"model", srv_->model()}, {"messages", std::move(messages)}};
    body.update(extra);
    return body;
  }
};
TestServer* Backend::srv_ = nullptr;

// The prompt token count, computed here independently of the server: render with the model's template,
// encode.
int count_prompt_tokens(const Json& messages) {
  auto cfg = load_chat_template_config(test_model_dir());
  auto src = cfg->select(false);
  auto t = ChatTemplate::parse(*src);
  OrderedJson msgs = OrderedJson::parse(messages.dump());
  auto text = t->render(make_chat_context(*cfg, msgs, nullptr, true));
  auto tok = Tokenizer::from_model_dir(test_model_dir());
  EncodeOptions eo;
  eo.add_special_tokens = false;
  eo.parse_special = true;
  return int((*tok)->encode(*text, eo)->size());
}

TEST_F(Backend, ChatWithSystemPrompt) {
  Json with_system = {{{"role", "system"}, {"content", "You are a terse assistant."}},
                      {{"role", "user"}, {"content", "Say hello."}}};
  Json without = {{{"role", "user"}, {"content", "Say hello."}}};
  auto r = srv_->post("/v1/chat/completions", chat(with_system, {{"max_tokens", 12}, {"seed", 7}}));
  ASSERT_EQ(r.status, 200) << r.raw;
  const Json& b = r.body;
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["model"], srv_->model());
  ASSERT_EQ(b["choices"].size(), 1u);
  EXPECT_EQ(b["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(b["choices"][0]["message"]["content"].is_string());
  const std::string fr = b["choices"][0]["finish_reason"];
  EXPECT_TRUE(fr == "stop" || fr == "length") << fr;
  // The system prompt reached the model: the server's count matches an independent render + encode, and is
  // larger than the same conversation without it.
  EXPECT_EQ(b["usage"]["prompt_tokens"].get<int>(), count_prompt_tokens(with_system));
  auto r2 = srv_->post("/v1/chat/completions", chat(without, {{"max_tokens", 1}}));
  ASSERT_EQ(r2.status, 200) << r2.raw;
  EXPECT_EQ(r2.body["usage"]["prompt_tokens"].get<int>(), count_prompt_tokens(without));
  EXPECT_GT(b["usage"]["prompt_tokens"].get<int>(), r2.body["usage"]["prompt_tokens"].get<int>());
  EXPECT_LE(b["usage"]["completion_tokens"].get<int>(), 12);
  EXPECT_EQ(b["usage"]["total_tokens"].get<int>(),
            b["usage"]["prompt_tokens"].get<int>() + b["usage"]["completion_tokens"].get<int>());
  for (const char* k : {"queue_ms", "prompt_ms", "decode_ms"}) {
    ASSERT_TRUE(b["timings"][k].is_number()) << k;
    EXPECT_GE(b["timings"][k].get<double>(), 0.0) << k;
  }
}

TEST_F(Backend, StructuredOutputEmailIsValid) {
  const std::regex email("[a-zA-Z]{5,10}@example\\.com");
  for (double temperature : {1.0, 0.0}) {
    for (int seed : {1, 2, 3}) {
      auto r = srv_->post("/v1/chat/completions",
                          chat({{{"role", "user"}, {"content", "Write an email to Alice."}}},
                               {{"temperature", temperature},
                                {"seed", seed},
                                {"max_tokens", 400},
                                {"grammar_finish_after", 60},
                                {"response_format", json_schema_format("Email", kEmailSchema)}}));
      ASSERT_EQ(r.status, 200) << r.raw;
      const std::string content = r.body["choices"][0]["message"]["content"];
      EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop") << content;
      EXPECT_EQ(valijson_error(kEmailSchema, content), "") << content;
      Json doc = Json::parse(content, nullptr, false);
      ASSERT_FALSE(doc.is_discarded()) << content;
      EXPECT_TRUE(std::regex_match(doc["to"]["email_address"].get<std::string>(), email)) << content;
    }
  }
}

TEST_F(Backend, JsonObjectModeGivesAnObject) {
  auto r = srv_->post("/v1/chat/completions", chat({{{"role", "user"}, {"content", "JSON please"}}},
                                                   {{"seed", 5},
                                                    {"max_tokens", 300},
                                                    {"grammar_finish_after", 40},
                                                    {"response_format", {{"type", "json_object"}}}}));
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string content = r.body["choices"][0]["message"]["content"];
  Json doc = Json::parse(content, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << content;
  EXPECT_TRUE(doc.is_object()) << content;
}

TEST_F(Backend, BatchedRawCompletionOfFivePrompts) {
  std::vector<std::string> prompts = {"The capital of France is", "1, 2, 3,",
                                      "def main():", "Once upon a time", "SELECT * FROM"};
  Json body = {{"model", srv_->model()}, {"prompt", prompts}, {"max_tokens", 10}, {"seed", 11},
               {"temperature", 0.8},     {"ignore_eos", true}};
  auto r = srv_->post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["object"], "text_completion");
  ASSERT_EQ(r.body["choices"].size(), 5u);
  auto tok = Tokenizer::from_model_dir(test_model_dir());
  int prompt_tokens = 0;
  for (size_t i = 0; i < 5; ++i) {
    const Json& c = r.body["choices"][i];
    EXPECT_EQ(c["index"].get<size_t>(), i);
    EXPECT_EQ(c["finish_reason"], "length");
    prompt_tokens += int((*tok)->encode(prompts[i])->size());
    // Batched generation equals the same prompt run alone with the same seed.
    Json one = body;
    one["prompt"] = prompts[i];
    auto single = srv_->post("/v1/completions", one);
    ASSERT_EQ(single.status, 200) << single.raw;
    EXPECT_EQ(single.body["choices"][0]["text"], c["text"]) << "prompt " << i;
  }
  EXPECT_EQ(r.body["usage"]["prompt_tokens"].get<int>(), prompt_tokens);
  EXPECT_EQ(r.body["usage"]["completion_tokens"].get<int>(), 50);
}

TEST_F(Backend, FourPromptsWithAnswerSchemaAllValid) {
  std::vector<std::string> prompts = {
      "Q: What is 2+2?\nA:", "Q: Name a colour.\nA:", "Q: How many legs?\nA:", "Q: Largest planet?\nA:"};
  for (double temperature : {0.0, 1.0}) {
    Json body = {{"model", srv_->model()},
                 {"prompt", prompts},
                 {"max_tokens", 200},
                 {"seed", 3},
                 {"temperature", temperature},
                 {"grammar_finish_after", 30},
                 {"response_format", json_schema_format("Answer", kAnswerSchema)}};
    auto r = srv_->post("/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(r.body["choices"].size(), 4u);
    for (const Json& c : r.body["choices"]) {
      const std::string text = c["text"];
      EXPECT_EQ(c["finish_reason"], "stop") << text;
      EXPECT_EQ(valijson_error(kAnswerSchema, text), "") << text;
    }
  }
}

struct StreamRun {
  std::string text;  // concatenated deltas
  Clock::time_point first_content, done;
  bool saw_done = false, saw_role = false;
  std::string finish_reason;
  Json usage;
  int status = 0;
};

StreamRun run_stream(int port, const Json& body) {
  StreamRun run;
  std::string buf;
  bool have_first = false;
  run.status = stream_post(port, "/v1/chat/completions", body.dump(), [&](const std::string& data) {
    buf += data;
    size_t pos;
    while ((pos = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, pos);
      buf.erase(0, pos + 2);
      if (ev.rfind("data: ", 0) != 0) continue;
      std::string payload = ev.substr(6);
      if (payload == "[DONE]") {
        run.saw_done = true;
        run.done = Clock::now();
        continue;
      }
      Json j = Json::parse(payload, nullptr, false);
      if (j.is_discarded() || !j.contains("choices") || j["choices"].empty()) continue;
      const Json& c = j["choices"][0];
      if (c["delta"].contains("role")) run.saw_role = true;
      if (c["delta"].contains("content") && !c["delta"]["content"].get<std::string>().empty()) {
        if (!have_first) run.first_content = Clock::now(), have_first = true;
        run.text += c["delta"]["content"].get<std::string>();
      }
      if (!c["finish_reason"].is_null()) {
        run.finish_reason = c["finish_reason"];
        run.usage = j["usage"];
      }
    }
    return true;
  });
  return run;
}

TEST_F(Backend, TwoParallelStreamsMatchNonStreamed) {
  auto body_for = [&](int seed, bool stream) {
    return chat({{{"role", "user"}, {"content", cat("Tell me a story number ", seed)}}},
                {{"seed", seed}, {"max_tokens", 96}, {"ignore_eos", true}, {"stream", stream}});
  };
  StreamRun a, b;
  std::thread ta([&] { a = run_stream(srv_->port(), body_for(21, true)); });
  std::thread tb([&] { b = run_stream(srv_->port(), body_for(22, true)); });
  ta.join();
  tb.join();
  for (StreamRun* s : {&a, &b}) {
    ASSERT_EQ(s->status, 200);
    EXPECT_TRUE(s->saw_role);
    EXPECT_TRUE(s->saw_done);
    EXPECT_EQ(s->finish_reason, "length");
    EXPECT_EQ(s->usage["completion_tokens"], 96);
    // The first chunk arrived while the request was still generating, not all at the end.
    EXPECT_LT(s->first_content, s->done);
  }
  // The two ran side by side: each one's first chunk came before the other one finished.
  EXPECT_LT(a.first_content, b.done);
  EXPECT_LT(b.first_content, a.done);
  // Same seed, same text, streamed or not.
  auto na = srv_->post("/v1/chat/completions", body_for(21, false));
  auto nb = srv_->post("/v1/chat/completions", body_for(22, false));
  ASSERT_EQ(na.status, 200);
  ASSERT_EQ(nb.status, 200);
  EXPECT_EQ(a.text, na.body["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_EQ(b.text, nb.body["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_NE(a.text, b.text);
}

TEST_F(Backend, StreamedMultiPromptCompletionMatchesNonStreamed) {
  Json body = {{"model", srv_->model()}, {"prompt", {"alpha", "beta gamma", "delta"}},
               {"max_tokens", 20},       {"seed", 4},
               {"ignore_eos", true},     {"stop", {"zz"}}};
  auto ref = srv_->post("/v1/completions", body);
  ASSERT_EQ(ref.status, 200) << ref.raw;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  std::string raw;
  ASSERT_EQ(stream_post(srv_->port(), "/v1/completions", body.dump(),
                        [&](const std::string& d) {
                          raw += d;
                          return true;
                        }),
            200);
  std::vector<std::string> text(3);
  std::vector<std::string> finish(3);
  Json usage;
  auto events = sse_data(raw);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    Json j = Json::parse(e);
    EXPECT_EQ(j["object"], "text_completion");
    if (j["choices"].empty()) {
      usage = j["usage"];
      continue;
    }
    const Json& c = j["choices"][0];
    const size_t i = c["index"];
    ASSERT_LT(i, 3u);
    text[i] += c["text"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish[i] = c["finish_reason"];
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(text[i], ref.body["choices"][i]["text"].get<std::string>()) << i;
    EXPECT_EQ(finish[i], ref.body["choices"][i]["finish_reason"].get<std::string>()) << i;
  }
  EXPECT_EQ(usage, ref.body["usage"]);
}

TEST_F(Backend, TemperatureZeroTwiceIsIdenticalAndEnds) {
  for (bool schema : {false, true}) {
    Json extra = {{"temperature", 0}, {"max_tokens", 64}};
    if (schema) {
      extra["response_format"] = json_schema_format("Answer", kAnswerSchema);
      extra["max_tokens"] = 300;
      extra["grammar_finish_after"] = 40;
    }
    std::string first;
    for (int i = 0; i < 2; ++i) {
      extra["seed"] = 100 + i;  // greedy ignores the seed
      const auto t0 = Clock::now();
      auto r = srv_->post("/v1/chat/completions", chat({{{"role", "user"}, {"content", "Hi"}}}, extra));
      ASSERT_EQ(r.status, 200) << r.raw;
      EXPECT_LT(Clock::now() - t0, std::chrono::seconds(30));
      const std::string text = r.body["choices"][0]["message"]["content"];
      if (i == 0) first = text;
      EXPECT_EQ(text, first);
      if (schema) {
        EXPECT_EQ(valijson_error(kAnswerSchema, text), "") << text;
      }
    }
  }
}

TEST_F(Backend, InvalidSchemaBesideAGoodRequest) {
  Json good =
      chat({{{"role", "user"}, {"content", "Go"}}}, {{"seed", 9}, {"max_tokens", 64}, {"ignore_eos", true}});
  Json broken = {{"type", "object"}, {"properties", {{"a", {{"type", "strnig"}}}}}};
  Json bad = chat({{{"role", "user"}, {"content", "Go"}}},
                  {{"response_format",
                    {{"type", "json_schema"}, {"json_schema", {{"name", "Broken"}, {"schema", broken}}}}}});
  TestServer::Reply rg, rb;
  std::thread tg([&] { rg = srv_->post("/v1/chat/completions", good); });
  std::thread tb([&] { rb = srv_->post("/v1/chat/completions", bad); });
  tg.join();
  tb.join();
  EXPECT_EQ(rb.status, 400) << rb.raw;
  EXPECT_EQ(rb.body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(rb.body["error"]["param"], "response_format.json_schema.schema");
  EXPECT_NE(rb.body["error"]["message"].get<std::string>().find("strnig"), std::string::npos) << rb.raw;
  ASSERT_EQ(rg.status, 200) << rg.raw;
  EXPECT_EQ(rg.body["usage"]["completion_tokens"], 64);
}

TEST_F(Backend, CancellingAStreamFreesItsSlot) {
  const double cancelled_before = srv_->metric("tailor_requests_finished_total{reason=\"cancelled\"}");
  Json body = chat({{{"role", "user"}, {"content", "Never stop"}}},
                   {{"max_tokens", 100000}, {"ignore_eos", true}, {"stream", true}, {"seed", 1}});
  int chunks = 0;
  stream_post(srv_->port(), "/v1/chat/completions", body.dump(), [&](const std::string& data) {
    return ++chunks < 5;  // hang up after a few chunks
  });
  EXPECT_GE(chunks, 5);
  // The engine notices at its next write, cancels the request and frees the slot.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  double active = -1, cancelled = -1;
  while (Clock::now() < deadline) {
    active = srv_->metric("tailor_slots_active");
    cancelled = srv_->metric("tailor_requests_finished_total{reason=\"cancelled\"}");
    if (active == 0 && cancelled == cancelled_before + 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(active, 0);
  EXPECT_EQ(cancelled, cancelled_before + 1);
  EXPECT_EQ(srv_->metric("tailor_kv_cache_tokens"), 0);
}

}  // namespace
}  // namespace tailor::testing
