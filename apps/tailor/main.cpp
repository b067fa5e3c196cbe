// tailor: run and serve language models locally, at the speed the hardware allows.
#include <cstdio>
#include <cstring>

#include "command.h"
#include "core/log.h"

namespace tailor::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}

Result<Args> Args::parse(const std::vector<std::string>& argv, const std::vector<std::string>& value_flags,
                         const std::vector<std::string>& bool_flags) {
  Args a;
  auto is_in = [](const std::vector<std::string>& v, const std::string& s) {
    for (auto& x : v)
      if (x == s) return true;
    return false;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), val;
      bool has_eq = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        val = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_eq = true;
      }
      if (is_in(bool_flags, name)) {
        if (has_eq) return invalid_argument(cat("flag --", name, " takes no value"));
        a.values_[name] = "1";
      } else if (is_in(value_flags, name)) {
        if (!has_eq) {
          if (i + 1 >= argv.size()) return invalid_argument(cat("flag --", name, " needs a value"));
          val = argv[++i];
        }
        a.values_[name] = val;
      } else {
        return invalid_argument(cat("unknown flag --", name, " (see --help)"));
      }
    } else {
      a.positional_.push_back(s);
    }
  }
  return a;
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& def) const {
  return get(name).value_or(def);
}

Result<double> Args::get_double(const std::string& name, double def) const {
  auto v = get(name);
  if (!v) return def;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0')
    return invalid_argument(cat("--", name, " expects a number, got '", *v, "'"));
  return d;
}

Result<long long> Args::get_int(const std::string& name, long long def) const {
  auto v = get(name);
  if (!v) return def;
  char* end = nullptr;
  long long d = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0')
    return invalid_argument(cat("--", name, " expects an integer, got '", *v, "'"));
  return d;
}

int fail(const Status& st) {
  std::fprintf(stderr, "tailor: error: %s\n", st.message().c_str());
  return 1;
}

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "tailor %s: %s\n(run `tailor %s --help` for usage)\n", command.c_str(),
               message.c_str(), command.c_str());
  return 2;
}

}  // namespace tailor::cli

static void print_help() {
  std::printf(
      "tailor - run and serve language models locally, fast, on the hardware you have\n\n"
      "usage: tailor COMMAND [ARGS...]   (tailor COMMAND --help for details)\n\ncommands:\n");
  for (auto& [name, c] : tailor::cli::registry())
    std::printf("  %-14s %s\n", name.c_str(), c.summary.c_str());
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("tailor 0.1.0\n");
    return 0;
  }
  auto& reg = tailor::cli::registry();
  auto it = reg.find(argv[1]);
  if (it == reg.end()) {
    std::fprintf(stderr, "tailor: unknown command '%s'\n\n", argv[1]);
    print_help();
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", it->second.usage.c_str());
      return 0;
    }
  }
  return it->second.run(args);
}
