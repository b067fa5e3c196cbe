// The JSON Schema converter's state, shared by json_schema.cpp (references, allOf merging, the visitor) and
// json_schema_types.cpp (one grammar per JSON type). Internal to src/grammar.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"

namespace tailor::grammar {

class SchemaConverter {
 public:
  SchemaConverter(const OrderedJson& doc, const JsonSchemaOptions& opt);
  Result<Grammar> run();

 private:
  Status error(const std::string& path, const std::string& msg) const;
  Expr ws() const;

  // references and allOf (json_schema.cpp)
  Result<const OrderedJson*> lookup(const std::string& ref, const std::string& path) const;
  Result<uint32_t> ref_rule(const std::string& ref, const std::string& path, int depth);
  Result<OrderedJson> resolve(const OrderedJson& s, const std::string& path, int depth) const;
  Result<OrderedJson> merge(const OrderedJson& a, const OrderedJson& b, const std::string& path,
                            int depth) const;
  Result<Expr> visit(const OrderedJson& s, const std::string& path, int depth);

  // types (json_schema_types.cpp)
  Result<Expr> typed_expr(const OrderedJson& s, const std::string& path, int depth);
  Result<Expr> object_expr(const OrderedJson& s, const std::string& path, int depth);
  Result<Expr> array_expr(const OrderedJson& s, const std::string& path, int depth);
  Result<Expr> string_expr(const OrderedJson& s, const std::string& path);
  Result<Expr> integer_expr(const OrderedJson& s, const std::string& path);
  Result<Expr> number_expr_for(const OrderedJson& s, const std::string& path);
  Result<Expr> enum_expr(const OrderedJson& s, const std::string& path);
  Status check_one_of(const std::vector<OrderedJson>& branches, const std::string& path, int depth) const;
  Expr any_value();
  Expr plain_string();
  Expr extra_key(const std::vector<std::string>& declared);

  const OrderedJson& doc_;
  JsonSchemaOptions opt_;
  Grammar g_;
  std::unordered_map<std::string, uint32_t> ref_rules_;
  std::unordered_map<std::string, uint32_t> shared_;  // named helper rules (string, any_value, ...)
};

}  // namespace tailor::grammar
