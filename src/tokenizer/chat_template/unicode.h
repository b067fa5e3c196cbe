// The Unicode behaviour of Python's str that chat templates observe: strings are sequences of code points
// (len, indexing, slicing, iteration), str.strip()/split() use Unicode whitespace, upper()/lower()/title()
// use Unicode case mappings, and repr() escapes non-printable characters. Strings stay UTF-8 bytes here;
// bytes that are not valid UTF-8 count as one "code point" each and pass through unchanged, so no input is
// lost.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailor::chat_template {

// Decodes the code point at s[i] and returns its byte length (>= 1). Invalid bytes decode as one
// code point each with *valid = false (cp is then the byte value).
size_t utf8_next(std::string_view s, size_t i, uint32_t* cp, bool* valid = nullptr);
void append_utf8(std::string& out, uint32_t cp);
bool is_ascii(std::string_view s);
// Number of code points (Python len()).
size_t cp_count(std::string_view s);
// Byte offsets of each code point start, plus s.size() at the end (size = cp_count + 1).
std::vector<size_t> cp_offsets(std::string_view s);

// Python str.isspace() for one code point.
bool py_isspace(uint32_t cp);
// Python str.isprintable() for one code point (what repr() leaves unescaped).
bool py_isprintable(uint32_t cp);
bool py_iscased(uint32_t cp);
bool py_isupper_cp(uint32_t cp);
bool py_islower_cp(uint32_t cp);
bool py_isalpha_cp(uint32_t cp);
bool py_isdigit_cp(uint32_t cp);
bool py_isnumeric_cp(uint32_t cp);

// Case mappings (Python's str methods; simple one-to-one mappings plus the common one-to-many ones).
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_swapcase(std::string_view s);
void append_upper_cp(std::string& out, uint32_t cp);
void append_lower_cp(std::string& out, uint32_t cp);
void append_title_cp(std::string& out, uint32_t cp);

// Predicates over a whole string with Python's rules (empty string -> false).
bool py_isspace(std::string_view s);
bool py_isalpha(std::string_view s);
bool py_isdigit(std::string_view s);
bool py_isalnum(std::string_view s);
bool py_isupper(std::string_view s);
bool py_islower(std::string_view s);

}  // namespace tailor::chat_template
