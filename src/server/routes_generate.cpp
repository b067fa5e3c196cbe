// POST /v1/chat/completions and POST /v1/completions: validate, render the chat template, tokenize, compile
// the grammar, submit to the engine, then answer as one JSON body or as server-sent events.
#include <chrono>
#include <ctime>
#include <thread>

#include "core/log.h"
#include "server/server_impl.h"

namespace tailor {

using api::ApiError;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kMaxJsonDepth = 64;

std::optional<ApiError> parse_body(const httplib::Request& req, OrderedJson* out) {
  if (req.body.empty())
    return api::bad_field("", "the request body is empty: send a JSON object", "invalid_json");
  auto j = parse_ordered_json(req.body, "request body");
  if (!j.ok()) return api::bad_field("", j.status().message(), "invalid_json");
  if (api::json_depth(*j) > kMaxJsonDepth)
    return api::bad_field("", cat("the request nests JSON deeper than ", kMaxJsonDepth, " levels"),
                          "invalid_json");
  *out = std::move(j).value();
  return std::nullopt;
}

const char* finish_reason(RequestEnd e) {
  switch (e) {
    case RequestEnd::stop:
      return "stop";
    case RequestEnd::length:
      return "length";
    default:
      return request_end_name(e);
  }
}

OrderedJson usage_json(int n_prompt, int n_gen) {
  return {{"prompt_tokens", n_prompt}, {"completion_tokens", n_gen}, {"total_tokens", n_prompt + n_gen}};
}

OrderedJson timings_json(const RequestTimings& t, int n_prompt, int n_gen) {
  return {{"queue_ms", t.queue_ms},
          {"prompt_ms", t.prompt_ms},
          {"decode_ms", t.decode_ms},
          {"prompt_tokens", n_prompt},
          {"completion_tokens", n_gen},
          {"prompt_per_second", t.prompt_ms > 0 ? n_prompt * 1e3 / t.prompt_ms : 0.0},
          {"decode_per_second", t.decode_ms > 0 && n_gen > 1 ? (n_gen - 1) * 1e3 / t.decode_ms : 0.0}};
}

// The whole of one request's output once it has finished.
struct Collected {
  std::string text;
  EngineEvent final;
};

Collected collect(RequestHandle& h) {
  Collected c;
  std::vector<EngineEvent> ev;
  for (;;) {
    ev.clear();
    const bool done = h.next(ev, std::chrono::milliseconds(1000));
    for (auto& e : ev) {
      c.text += e.text;
      if (e.done) c.final = std::move(e);
    }
    if (done) return c;
  }
}

// How a finished request that did not produce a normal answer is reported.
std::optional<ApiError> failure(const EngineEvent& f) {
  if (f.end == RequestEnd::error)
    return ApiError{500, cat("generation failed: ", f.status.message()), "server_error", "",
                    "generation_failed"};
  if (f.end == RequestEnd::cancelled)
    return ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"};
  return std::nullopt;
}

// State of one streamed response (one or more choices), shared with httplib's content provider.
struct StreamState {
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<bool> done;
  std::vector<int> n_prompt;
  bool chat = false, include_usage = false, started = false;
  std::string id, model;
  int64_t created = 0;
  int total_prompt = 0, total_gen = 0;
  Clock::time_point last_write = Clock::now();

  OrderedJson chunk(OrderedJson choice) const {
    OrderedJson j = {{"id", id},
                     {"object", chat ? "chat.completion.chunk" : "text_completion"},
                     {"created", created},
                     {"model", model},
                     {"system_fingerprint", "tailor"}};
    j["choices"] = OrderedJson::array();
    if (!choice.is_null()) j["choices"].push_back(std::move(choice));
    return j;
  }
  OrderedJson choice(size_t i, const std::string& text, const char* finish) const {
    OrderedJson c = {{"index", i}};
    if (chat) {
      c["delta"] = finish && text.empty() ? OrderedJson::object() : OrderedJson{{"content", text}};
    } else {
      c["text"] = text;
    }
    c["logprobs"] = nullptr;
    c["finish_reason"] = finish ? OrderedJson(finish) : OrderedJson();
    return c;
  }
};

// SSE events are ASCII-only JSON: clients that split lines on Unicode separators (Python's str.splitlines()
// breaks at U+2028, U+0085, ...) would otherwise cut an event in two.
std::string event_json(const OrderedJson& j) {
  return j.dump(-1, ' ', true, OrderedJson::error_handler_t::replace);
}

bool write_event(httplib::DataSink& sink, const std::string& data) {
  const std::string msg = "data: " + data + "\n\n";
  return sink.write(msg.data(), msg.size());
}

void cancel_all(StreamState& st) {
  for (auto& h : st.handles) h->cancel();
}

// One call of httplib's chunked content provider: waits briefly for engine output and writes it as events.
// Returns false to drop the connection (client gone).
bool pump_stream(StreamState& st, httplib::DataSink& sink) {
  if (!st.started) {
    st.started = true;
    if (st.chat) {
      for (size_t i = 0; i < st.handles.size(); ++i) {
        OrderedJson c = {{"index", i},
                         {"delta", {{"role", "assistant"}, {"content", ""}}},
                         {"logprobs", nullptr},
                         {"finish_reason", nullptr}};
        if (!write_event(sink, event_json(st.chunk(std::move(c))))) return cancel_all(st), false;
      }
      st.last_write = Clock::now();
    }
  }
  std::vector<std::pair<size_t, EngineEvent>> events;
  {
    std::vector<EngineEvent> ev;
    if (st.handles.size() == 1) {
      st.handles[0]->next(ev, std::chrono::milliseconds(250));
      for (auto& e : ev) events.emplace_back(0, std::move(e));
    } else {
      for (size_t i = 0; i < st.handles.size(); ++i) {
        if (st.done[i]) continue;
        ev.clear();
        st.handles[i]->next(ev, std::chrono::milliseconds(0));
        for (auto& e : ev) events.emplace_back(i, std::move(e));
      }
      if (events.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  for (auto& [i, e] : events) {
    if (!e.text.empty() && !write_event(sink, event_json(st.chunk(st.choice(i, e.text, nullptr)))))
      return cancel_all(st), false;
    if (!e.done) continue;
    st.done[i] = true;
    if (auto err = failure(e)) {
      if (!write_event(sink, event_json(api::error_json(*err)))) return cancel_all(st), false;
      continue;
    }
    st.total_prompt += e.n_prompt;
    st.total_gen += e.n_generated;
    OrderedJson j = st.chunk(st.choice(i, "", finish_reason(e.end)));
    j["usage"] = usage_json(e.n_prompt, e.n_generated);
    j["timings"] = timings_json(e.timings, e.n_prompt, e.n_generated);
    if (!write_event(sink, event_json(j))) return cancel_all(st), false;
  }
  if (!events.empty()) st.last_write = Clock::now();
  if (std::all_of(st.done.begin(), st.done.end(), [](bool d) { return d; })) {
    if (st.include_usage) {
      OrderedJson j = st.chunk(nullptr);
      j["usage"] = usage_json(st.total_prompt, st.total_gen);
      if (!write_event(sink, event_json(j))) return false;
    }
    static const std::string kDone = "data: [DONE]\n\n";
    if (!sink.write(kDone.data(), kDone.size())) return false;
    sink.done();
    return true;
  }
  // A comment line now and then finds clients that left while their request waits for a slot.
  if (Clock::now() - st.last_write > std::chrono::seconds(1)) {
    static const std::string kPing = ": keep-alive\n\n";
    if (!sink.write(kPing.data(), kPing.size())) return cancel_all(st), false;
    st.last_write = Clock::now();
  }
  return true;
}

}  // namespace

// Shared by both routes once the prompts are token ids.
static std::optional<ApiError> submit_and_respond(Server::Impl& s, const api::GenerationParams& p,
                                                  std::vector<std::vector<int32_t>> prompts, bool chat,
                                                  httplib::Response& res) {
  const int n_ctx = s.engine->n_ctx();
  std::vector<EngineRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string param = chat ? "messages" : "prompt";
    const int n = int(prompts[i].size());
    if (n == 0) return api::bad_field(param, "the prompt is empty after tokenization", "empty_prompt");
    if (n >= n_ctx)
      return api::bad_field(
          param,
          cat(prompts.size() > 1 ? cat("prompt[", i, "] ") : std::string("the prompt "), "has ", n,
              " tokens but the context holds ", n_ctx,
              " (one more is needed to generate); shorten it or start the server with a larger --ctx"),
          "context_length_exceeded");
    EngineRequest r;
    r.prompt = std::move(prompts[i]);
    r.sampling = p.sampling;
    r.max_new_tokens = p.max_tokens ? *p.max_tokens : std::min(s.opt.default_max_tokens, n_ctx - n);
    r.stop_ids = s.model.stop_ids;
    r.stop_strings = p.stop;
    r.ignore_eos = p.ignore_eos;
    r.penalize_prompt = false;  // OpenAI: penalties count the tokens sampled so far
    r.finish_after = p.finish_after;
    using Kind = api::ResponseFormat::Kind;
    if (p.response_format.kind != Kind::text) {
      auto c = p.response_format.kind == Kind::json_object
                   ? s.grammars->json_object()
                   : s.grammars->json_schema(p.response_format.schema_json);
      if (!c.ok())
        return api::bad_field(p.response_format.kind == Kind::json_object
                                  ? "response_format"
                                  : "response_format.json_schema.schema",
                              cat("invalid response_format: ", c.status().message()), "invalid_schema");
      r.constraint = std::move(c).value();
    }
    reqs.push_back(std::move(r));
  }
  std::vector<int> n_prompt;
  for (auto& r : reqs) n_prompt.push_back(int(r.prompt.size()));

  auto handles = s.engine->submit(std::move(reqs));
  if (!handles.ok()) {
    const Status& st = handles.status();
    if (st.code() == ErrorCode::out_of_memory)
      return ApiError{503, st.message(), "server_error", "", "server_busy"};
    if (st.code() == ErrorCode::cancelled)
      return ApiError{503, st.message(), "server_error", "", "shutting_down"};
    return api::bad_field(chat ? "messages" : "prompt", st.message(), "invalid_request");
  }
  const std::string id = s.new_id(chat ? "chatcmpl" : "cmpl");
  const int64_t created = int64_t(std::time(nullptr));

  if (p.stream) {
    auto st = std::make_shared<StreamState>();
    st->handles = std::move(handles).value();
    st->done.assign(st->handles.size(), false);
    st->n_prompt = n_prompt;
    st->chat = chat;
    st->include_usage = p.include_usage;
    st->id = id;
    st->model = s.opt.model_name;
    st->created = created;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [st](size_t, httplib::DataSink& sink) { return pump_stream(*st, sink); },
        // Runs however the response ends: a request whose client left is cancelled, freeing its slot.
        [st](bool) { cancel_all(*st); });
    return std::nullopt;
  }

  OrderedJson choices = OrderedJson::array();
  RequestTimings agg;
  int total_prompt = 0, total_gen = 0;
  std::vector<Collected> outs;
  for (auto& h : *handles) outs.push_back(collect(*h));
  for (size_t i = 0; i < outs.size(); ++i) {
    const EngineEvent& f = outs[i].final;
    if (auto err = failure(f)) return err;
    OrderedJson c = {{"index", i}};
    if (chat) {
      c["message"] = {{"role", "assistant"}, {"content", outs[i].text}, {"refusal", nullptr}};
    } else {
      c["text"] = outs[i].text;
    }
    c["logprobs"] = nullptr;
    c["finish_reason"] = finish_reason(f.end);
    if (outs.size() > 1) c["timings"] = timings_json(f.timings, f.n_prompt, f.n_generated);
    choices.push_back(std::move(c));
    total_prompt += f.n_prompt;
    total_gen += f.n_generated;
    agg.queue_ms = std::max(agg.queue_ms, f.timings.queue_ms);
    agg.prompt_ms = std::max(agg.prompt_ms, f.timings.prompt_ms);
    agg.decode_ms = std::max(agg.decode_ms, f.timings.decode_ms);
  }
  OrderedJson j = {{"id", id},
                   {"object", chat ? "chat.completion" : "text_completion"},
                   {"created", created},
                   {"model", s.opt.model_name},
                   {"system_fingerprint", "tailor"},
                   {"choices", std::move(choices)},
                   {"usage", usage_json(total_prompt, total_gen)},
                   {"timings", timings_json(agg, total_prompt, total_gen)}};
  res.set_content(dump_json(j), "application/json");
  return std::nullopt;
}

static std::optional<ApiError> check_model(const Server::Impl& s, const std::string& model) {
  if (model == s.opt.model_name) return std::nullopt;
  return ApiError{404, cat("model '", model, "' does not exist; this server serves '", s.opt.model_name, "'"),
                  "invalid_request_error", "model", "model_not_found"};
}

void Server::Impl::handle_chat(const httplib::Request& req, httplib::Response& res) {
  auto run = [&]() -> std::optional<ApiError> {
    OrderedJson body;
    if (auto e = parse_body(req, &body)) return e;
    api::ChatRequest cr;
    if (auto e = api::parse_chat_request(body, &cr)) return e;
    if (auto e = check_model(*this, cr.p.model)) return e;
    if (!chat_template)
      return api::bad_field("messages",
                            cat("this model has no usable chat template (", template_error,
                                "); use /v1/completions with a raw prompt"),
                            "no_chat_template");
    const OrderedJson ctx = make_chat_context(*template_cfg, cr.messages, nullptr, true, &cr.template_kwargs);
    auto text = chat_template->render(ctx);
    if (!text.ok())
      return api::bad_field("messages",
                            cat("the chat template rejected the conversation: ", text.status().message()),
                            "template_error");
    EncodeOptions eo;
    eo.add_special_tokens = false;  // the template writes BOS and friends itself (as apply_chat_template)
    eo.parse_special = true;
    auto ids = model.tokenizer->encode(*text, eo);
    if (!ids.ok()) return api::bad_field("messages", ids.status().message(), "invalid_text");
    std::vector<std::vector<int32_t>> prompts{std::move(ids).value()};
    return submit_and_respond(*this, cr.p, std::move(prompts), true, res);
  };
  if (auto e = run()) send_error(res, *e);
}

void Server::Impl::handle_completions(const httplib::Request& req, httplib::Response& res) {
  auto run = [&]() -> std::optional<ApiError> {
    OrderedJson body;
    if (auto e = parse_body(req, &body)) return e;
    api::CompletionRequest cr;
    if (auto e = api::parse_completion_request(body, opt.max_prompts, &cr)) return e;
    if (auto e = check_model(*this, cr.p.model)) return e;
    std::vector<std::vector<int32_t>> prompts;
    EncodeOptions eo;
    eo.add_special_tokens = true;
    eo.parse_special = true;
    for (const auto& t : cr.prompts) {
      auto ids = model.tokenizer->encode(t, eo);
      if (!ids.ok()) return api::bad_field("prompt", ids.status().message(), "invalid_text");
      prompts.push_back(std::move(ids).value());
    }
    const int64_t n_vocab = engine->n_vocab();
    for (const auto& ids : cr.prompt_ids) {
      std::vector<int32_t> v;
      for (int64_t id : ids) {
        if (id < 0 || id >= n_vocab)
          return api::bad_field("prompt",
                                cat("token id ", id, " is outside the vocabulary [0, ", n_vocab, ")"),
                                "invalid_token");
        v.push_back(int32_t(id));
      }
      prompts.push_back(std::move(v));
    }
    return submit_and_respond(*this, cr.p, std::move(prompts), false, res);
  };
  if (auto e = run()) send_error(res, *e);
}

}  // namespace tailor
