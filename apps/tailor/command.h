// Subcommand registry: each cmd_<name>.cpp registers itself with TAILOR_COMMAND, so adding a command never
// touches main.cpp. Commands print results on stdout and everything else (progress, stats, errors) on stderr.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace tailor::cli {

struct Command {
  std::string name;
  std::string summary;                                           // one line for `tailor --help`
  std::string usage;                                             // full text for `tailor NAME --help`
  std::function<int(const std::vector<std::string>& args)> run;  // returns the exit code
};

std::map<std::string, Command>& registry();
struct Registrar {
  explicit Registrar(Command c) { registry()[c.name] = std::move(c); }
};

// Tiny flag parser: --name value, --name=value, --flag; positionals kept in order.
class Args {
 public:
  // `bool_flags` lists flags that take no value.
  static Result<Args> parse(const std::vector<std::string>& argv, const std::vector<std::string>& value_flags,
                            const std::vector<std::string>& bool_flags);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& def) const;
  Result<double> get_double(const std::string& name, double def) const;
  Result<long long> get_int(const std::string& name, long long def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Prints "tailor: error: <message>" to stderr and returns exit code 1 (2 for usage errors).
int fail(const Status& st);
int usage_error(const std::string& command, const std::string& message);

}  // namespace tailor::cli

#define TAILOR_COMMAND(ident, ...) \
  static ::tailor::cli::Registrar ident##_registrar(::tailor::cli::Command{__VA_ARGS__})
