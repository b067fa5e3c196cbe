// Every refusal the API promises: the status, and the OpenAI error JSON naming the field.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "engine/load.h"
#include "server_test_util.h"

namespace tailor::testing {
namespace {

class Errors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerConfig cfg;
    cfg.parallel = 2;
    cfg.n_ctx = 128;
    cfg.opt.max_body_bytes = 64 * 1024;
    srv_ = TestServer::start(cfg).release();
    ASSERT_NE(srv_, nullptr);
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;

  Json chat(Json extra = Json::object()) const {
    Json b = {
        {"model", srv_->model()}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}};
    b.update(extra);
    return b;
  }
  // Checks the error shape and returns the error object.
  static Json expect_error(const TestServer::Reply& r, int status, const std::string& param = "") {
    EXPECT_EQ(r.status, status) << r.raw;
    const Json& e = r.body.is_object() ? r.body["error"] : Json();
    EXPECT_TRUE(e.is_object()) << r.raw;
    if (!e.is_object()) return {};
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.raw;
    EXPECT_TRUE(e["type"].is_string()) << r.raw;
    EXPECT_TRUE(e.contains("param") && e.contains("code")) << r.raw;
    if (!param.empty()) {
      EXPECT_EQ(e["param"], param) << r.raw;
    }
    return e;
  }
};
TestServer* Errors::srv_ = nullptr;

TEST_F(Errors, MalformedJson) {
  for (const char* body : {"{", "{\"model\": }", "not json", "[1, 2", "{\"a\": \"\xff\xfe\"}", ""}) {
    auto e = expect_error(srv_->post_raw("/v1/chat/completions", body), 400);
    EXPECT_EQ(e["type"], "invalid_request_error");
    EXPECT_EQ(e["code"], "invalid_json") << body;
  }
  expect_error(srv_->post_raw("/v1/chat/completions", "[]"), 400);  // valid JSON, not an object
}

TEST_F(Errors, WrongTypesNameTheField) {
  expect_error(srv_->post("/v1/chat/completions", chat({{"temperature", "hot"}})), 400, "temperature");
  expect_error(srv_->post("/v1/chat/completions", chat({{"temperature", 5}})), 400, "temperature");
  expect_error(srv_->post("/v1/chat/completions", chat({{"max_tokens", 1.5}})), 400, "max_tokens");
  expect_error(srv_->post("/v1/chat/completions", chat({{"max_tokens", 0}})), 400, "max_tokens");
  expect_error(srv_->post("/v1/chat/completions", chat({{"max_tokens", 1e300}})), 400, "max_tokens");
  expect_error(srv_->post("/v1/chat/completions", chat({{"top_p", -1}})), 400, "top_p");
  expect_error(srv_->post("/v1/chat/completions", chat({{"seed", "x"}})), 400, "seed");
  expect_error(srv_->post("/v1/chat/completions", chat({{"stream", "yes"}})), 400, "stream");
  expect_error(srv_->post("/v1/chat/completions", chat({{"stop", 3}})), 400, "stop");
  expect_error(srv_->post("/v1/chat/completions", chat({{"messages", "hi"}})), 400, "messages");
  expect_error(srv_->post("/v1/chat/completions", chat({{"messages", {{{"role", "user"}, {"content", 5}}}}})),
               400, "messages[0].content");
  expect_error(
      srv_->post("/v1/chat/completions", chat({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}})), 400,
      "messages[0].role");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", {1, "a"}}}), 400,
               "prompt");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", {99999999}}}), 400,
               "prompt");
}

TEST_F(Errors, MissingFields) {
  Json b = chat();
  b.erase("messages");
  expect_error(srv_->post("/v1/chat/completions", b), 400, "messages");
  b = chat();
  b.erase("model");
  expect_error(srv_->post("/v1/chat/completions", b), 400, "model");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}}), 400, "prompt");
  expect_error(srv_->post("/v1/chat/completions", chat({{"messages", {{{"content", "x"}}}}})), 400,
               "messages[0].role");
  expect_error(srv_->post("/v1/chat/completions", chat({{"response_format", {{"type", "json_schema"}}}})),
               400, "response_format.json_schema");
}

TEST_F(Errors, UnknownModelIs404) {
  auto e = expect_error(srv_->post("/v1/chat/completions", chat({{"model", "gpt-17"}})), 404, "model");
  EXPECT_EQ(e["code"], "model_not_found");
  expect_error(srv_->post("/v1/completions", {{"model", "nope"}, {"prompt", "x"}}), 404, "model");
  expect_error(srv_->get("/v1/models/nope"), 404, "model");
  expect_error(srv_->get("/no/such/route"), 404);
}

TEST_F(Errors, EmptyMessagesAndPrompts) {
  expect_error(srv_->post("/v1/chat/completions", chat({{"messages", Json::array()}})), 400, "messages");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", Json::array()}}), 400,
               "prompt");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", ""}}), 400, "prompt");
}

TEST_F(Errors, PromptLongerThanContext) {
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "word ";
  auto e = expect_error(
      srv_->post("/v1/chat/completions", chat({{"messages", {{{"role", "user"}, {"content", long_text}}}}})),
      400, "messages");
  EXPECT_EQ(e["code"], "context_length_exceeded");
  e = expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", long_text}}), 400,
                   "prompt");
  EXPECT_EQ(e["code"], "context_length_exceeded");
}

TEST_F(Errors, InvalidSchemas) {
  for (Json schema : {Json{{"type", "strnig"}},
                      Json{{"type", "object"}, {"properties", {{"a", {{"$ref", "#/$defs/Missing"}}}}}},
                      Json{{"type", "string"}, {"pattern", "(unclosed"}}}) {
    Json rf = {{"type", "json_schema"}, {"json_schema", {{"name", "X"}, {"schema", schema}}}};
    auto e = expect_error(srv_->post("/v1/chat/completions", chat({{"response_format", rf}})), 400,
                          "response_format.json_schema.schema");
    EXPECT_EQ(e["code"], "invalid_schema") << schema.dump();
  }
  expect_error(srv_->post("/v1/chat/completions", chat({{"response_format", {{"type", "yaml"}}}})), 400,
               "response_format.type");
}

TEST_F(Errors, OversizeBodyIs413) {
  std::string big(100 * 1024, 'a');
  Json b = chat({{"messages", {{{"role", "user"}, {"content", big}}}}});
  auto r = srv_->post("/v1/chat/completions", b);
  expect_error(r, 413);
}

TEST_F(Errors, UnsupportedFieldsThatChangeResultsAreNamed) {
  expect_error(srv_->post("/v1/chat/completions", chat({{"n", 2}})), 400, "n");
  expect_error(srv_->post("/v1/chat/completions", chat({{"logprobs", true}})), 400, "logprobs");
  expect_error(srv_->post("/v1/chat/completions", chat({{"top_logprobs", 2}})), 400, "top_logprobs");
  expect_error(srv_->post("/v1/chat/completions", chat({{"logit_bias", {{"50256", -100}}}})), 400,
               "logit_bias");
  Json tool = {{"type", "function"}, {"function", {{"name", "f"}, {"parameters", Json::object()}}}};
  expect_error(srv_->post("/v1/chat/completions", chat({{"tools", {tool}}})), 400, "tools");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", "x"}, {"echo", true}}),
               400, "echo");
  expect_error(srv_->post("/v1/completions", {{"model", srv_->model()}, {"prompt", "x"}, {"best_of", 3}}),
               400, "best_of");
  // Harmless or "off" values pass.
  auto ok = srv_->post("/v1/chat/completions", chat({{"n", 1},
                                                     {"logprobs", false},
                                                     {"tools", Json::array()},
                                                     {"user", "me"},
                                                     {"some_future_field", {{"x", 1}}},
                                                     {"metadata", {{"k", "v"}}},
                                                     {"presence_penalty", 0.5},
                                                     {"frequency_penalty", 0.5},
                                                     {"stop", {"\n\n", "END"}},
                                                     {"max_completion_tokens", 3}}));
  EXPECT_EQ(ok.status, 200) << ok.raw;
  EXPECT_LE(ok.body["usage"]["completion_tokens"].get<int>(), 3);
}

TEST_F(Errors, RoutesAnswer) {
  auto h = srv_->get("/health");
  ASSERT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  auto m = srv_->get("/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["object"], "list");
  EXPECT_EQ(m.body["data"][0]["id"], srv_->model());
  EXPECT_EQ(srv_->get("/v1/models/" + srv_->model()).status, 200);
  auto c = srv_->client();
  auto r = c->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  for (const char* family :
       {"# TYPE tailor_http_requests_total counter", "# TYPE tailor_time_to_first_token_seconds histogram",
        "# TYPE tailor_time_per_output_token_seconds histogram", "# TYPE tailor_queue_depth gauge",
        "# TYPE tailor_slots_active gauge", "# TYPE tailor_kv_cache_usage_ratio gauge",
        "tailor_time_to_first_token_seconds_bucket{le=\"+Inf\"}"})
    EXPECT_NE(r->body.find(family), std::string::npos) << family;
}

TEST(ErrorsAuth, ApiKey) {
  ServerConfig cfg;
  cfg.parallel = 1;
  cfg.n_ctx = 64;
  cfg.opt.api_key = "s3cret";
  auto srv = TestServer::start(cfg);
  ASSERT_NE(srv, nullptr);
  Json body = {{"model", srv->model()}, {"prompt", "hi"}, {"max_tokens", 1}};
  auto no_key = srv->post("/v1/completions", body);
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.body["error"]["code"], "invalid_api_key");
  EXPECT_EQ(srv->post("/v1/completions", body, "wrong").status, 401);
  EXPECT_EQ(srv->post("/v1/completions", body, "s3cret").status, 200);
  EXPECT_EQ(srv->get("/v1/models").status, 401);
  EXPECT_EQ(srv->get("/v1/models", "s3cret").status, 200);
  EXPECT_EQ(srv->get("/health").status, 200);  // open, for load balancers
}

TEST(ErrorsBackPressure, FullQueueGets503WithRetryAfter) {
  ServerConfig cfg;
  cfg.parallel = 1;
  cfg.n_ctx = 4096;
  cfg.opt.max_queue = 1;
  auto srv = TestServer::start(cfg);
  ASSERT_NE(srv, nullptr);
  // Two long streams: one holds the slot, one waits in the queue; a third request is refused.
  Json slow = {{"model", srv->model()},
               {"prompt", "go"},
               {"max_tokens", 4000},
               {"ignore_eos", true},
               {"stream", true}};
  std::vector<std::unique_ptr<RawConn>> conns;
  const std::string body = slow.dump();
  for (int i = 0; i < 2; ++i) {
    auto c = std::make_unique<RawConn>(srv->port());
    ASSERT_TRUE(c->ok());
    ASSERT_TRUE(
        c->send_all(cat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: ",
                        body.size(), "\r\n\r\n", body)));
    conns.push_back(std::move(c));
  }
  // Wait until the engine holds one and queues the other.
  for (int i = 0;
       i < 200 && !(srv->metric("tailor_slots_active") == 1 && srv->metric("tailor_queue_depth") == 1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(srv->metric("tailor_queue_depth"), 1);
  auto r = srv->post("/v1/completions", {{"model", srv->model()}, {"prompt", "x"}, {"max_tokens", 1}});
  EXPECT_EQ(r.status, 503) << r.raw;
  EXPECT_EQ(r.retry_after, "1");
  EXPECT_EQ(r.body["error"]["code"], "server_busy");
  EXPECT_GE(srv->metric("tailor_requests_rejected_total"), 1);
  // Hanging up frees the slot and the queue place: the server serves again.
  for (auto& c : conns) c->close();
  for (int i = 0; i < 500 && srv->metric("tailor_slots_active") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(srv->metric("tailor_slots_active"), 0);
  EXPECT_EQ(srv->metric("tailor_queue_depth"), 0);
  EXPECT_EQ(
      srv->post("/v1/completions", {{"model", srv->model()}, {"prompt", "x"}, {"max_tokens", 1}}).status,
      200);
}

}  // namespace
}  // namespace tailor::testing

namespace tailor::testing {
namespace {

TEST(ErrorsBind, SecondServerOnABusyPortFailsClearly) {
  ServerConfig cfg;
  cfg.parallel = 1;
  cfg.n_ctx = 64;
  auto first = TestServer::start(cfg);
  ASSERT_NE(first, nullptr);
  LoadOptions lo;
  lo.runner.n_ctx = 64;
  lo.device = "cpu";
  lo.progress = false;
  lo.verbose = false;
  auto m = load_model(test_model_dir(), lo);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ServerOptions so;
  so.port = first->port();
  auto second = Server::create(std::move(m).value(), test_model_dir(), so);
  ASSERT_TRUE(second.ok()) << second.status().message();
  auto port = (*second)->bind();
  ASSERT_FALSE(port.ok()) << "bound a port another server listens on";
  EXPECT_NE(port.status().message().find("--port"), std::string::npos) << port.status().message();
  EXPECT_EQ(first->get("/health").status, 200);
}

}  // namespace
}  // namespace tailor::testing
