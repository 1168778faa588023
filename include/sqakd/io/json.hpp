// sqakd/io/json.hpp - a small, strict JSON parser for file headers (safetensors).
//
//   io::json::value v = io::json::parse(R"({"a": {"shape": [2, 3]}})");   // json::parse_error
//   const io::json::value* a = v.find("a");
//   std::uint64_t d = a->find("shape")->items[0].as_u64();                  // json::parse_error
//
// RFC 8259 grammar, nothing more: no comments, no trailing commas, no NaN, no duplicate
// object keys, strings must be valid UTF-8 and \u escapes must pair surrogates. Nesting is
// limited (max_depth) so a hostile header cannot exhaust the stack. Numbers keep their text;
// as_u64() accepts only a plain non-negative integer that fits in 64 bits. Errors are
// json::parse_error with the byte offset; callers turn them into error::corrupt_file naming
// their file. This is for headers of a few kilobytes to megabytes, not a general-purpose
// JSON library (the tools use nlohmann-json; the library headers do not depend on it).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sqakd::io::json {

struct parse_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline constexpr int max_depth = 64;

struct value {
    enum class kind { null, boolean, number, string, array, object };
    kind type = kind::null;
    bool boolean = false;
    std::string text;             // string contents, or the number's literal text
    std::vector<value> items;     // array elements, or object values (parallel to keys)
    std::vector<std::string> keys;  // object keys, in file order

    bool is_object() const { return type == kind::object; }
    bool is_array() const { return type == kind::array; }
    bool is_string() const { return type == kind::string; }
    bool is_number() const { return type == kind::number; }

    /// The member `key` of an object, or nullptr (also when this is not an object).
    const value* find(std::string_view key) const {
        if (type != kind::object) return nullptr;
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }

    /// The number as an unsigned 64-bit integer; parse_error unless it is a plain
    /// non-negative integer literal (no sign, fraction or exponent) that fits.
    std::uint64_t as_u64() const {
        if (type != kind::number) throw parse_error("expected an integer, got " + type_name());
        std::uint64_t v = 0;
        if (text.empty()) throw parse_error("expected a non-negative integer, got an empty number");
        for (char c : text) {
            if (c < '0' || c > '9') throw parse_error("expected a non-negative integer, got " + text);
            const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
            if (v > (UINT64_MAX - d) / 10) throw parse_error("integer " + text + " does not fit in 64 bits");
            v = v * 10 + d;
        }
        return v;
    }

    std::string type_name() const {
        switch (type) {
            case kind::null: return "null";
            case kind::boolean: return "a boolean";
            case kind::number: return "a number";
            case kind::string: return "a string";
            case kind::array: return "an array";
            case kind::object: return "an object";
        }
        return "?";
    }
};

namespace detail {

class parser {
public:
    explicit parser(std::string_view s) : m_s(s) {}

    value parse_document() {
        skip_ws();
        value v = parse_value(0);
        skip_ws();
        if (m_i != m_s.size()) fail("unexpected characters after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw parse_error("invalid JSON at byte " + std::to_string(m_i) + ": " + what);
    }
    bool at_end() const { return m_i >= m_s.size(); }
    char peek() const { return at_end() ? '\0' : m_s[m_i]; }
    void skip_ws() {
        while (!at_end() && (m_s[m_i] == ' ' || m_s[m_i] == '\t' || m_s[m_i] == '\n' || m_s[m_i] == '\r')) ++m_i;
    }
    void expect(char c) {
        if (at_end()) fail(std::string("expected '") + c + "', got the end of the text");
        if (m_s[m_i] != c) fail(std::string("expected '") + c + "'");
        ++m_i;
    }
    void literal(std::string_view word) {
        if (m_s.substr(m_i, word.size()) != word) fail("unknown literal");
        m_i += word.size();
    }

    value parse_value(int depth) {
        if (depth > max_depth) fail("nesting deeper than " + std::to_string(max_depth));
        value v;
        if (at_end()) fail("expected a value, got the end of the text");
        const char c = m_s[m_i];
        if (c == '{') {
            v.type = value::kind::object;
            ++m_i;
            skip_ws();
            if (peek() == '}') {
                ++m_i;
                return v;
            }
            for (;;) {
                skip_ws();
                if (peek() != '"') fail("expected a string key");
                std::string key = parse_string();
                for (const auto& k : v.keys)
                    if (k == key) fail("duplicate key \"" + key + "\"");
                skip_ws();
                expect(':');
                skip_ws();
                v.items.push_back(parse_value(depth + 1));
                v.keys.push_back(std::move(key));
                skip_ws();
                if (peek() == ',') {
                    ++m_i;
                    continue;
                }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            v.type = value::kind::array;
            ++m_i;
            skip_ws();
            if (peek() == ']') {
                ++m_i;
                return v;
            }
            for (;;) {
                skip_ws();
                v.items.push_back(parse_value(depth + 1));
                skip_ws();
                if (peek() == ',') {
                    ++m_i;
                    continue;
                }
                expect(']');
                return v;
            }
        }
        if (c == '"') {
            v.type = value::kind::string;
            v.text = parse_string();
            return v;
        }
        if (c == 't') {
            literal("true");
            v.type = value::kind::boolean;
            v.boolean = true;
            return v;
        }
        if (c == 'f') {
            literal("false");
            v.type = value::kind::boolean;
            return v;
        }
        if (c == 'n') {
            literal("null");
            return v;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            v.type = value::kind::number;
            v.text = parse_number();
            return v;
        }
        fail(std::string("unexpected character '") + c + "'");
    }

    static bool digit(char c) { return c >= '0' && c <= '9'; }

    std::string parse_number() {
        const std::size_t start = m_i;
        if (peek() == '-') ++m_i;
        if (peek() == '0') {
            ++m_i;
        } else if (digit(peek())) {
            while (digit(peek())) ++m_i;
        } else {
            fail("expected a digit");
        }
        if (peek() == '.') {
            ++m_i;
            if (!digit(peek())) fail("expected a digit after the decimal point");
            while (digit(peek())) ++m_i;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++m_i;
            if (peek() == '+' || peek() == '-') ++m_i;
            if (!digit(peek())) fail("expected a digit in the exponent");
            while (digit(peek())) ++m_i;
        }
        return std::string(m_s.substr(start, m_i - start));
    }

    unsigned hex4() {
        if (m_s.size() - m_i < 4) fail("truncated \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = m_s[m_i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<unsigned>(c - 'A' + 10);
            else
                fail("bad hex digit in \\u escape");
        }
        return v;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    // Copies one UTF-8 encoded character starting at m_i, checking it is well formed
    // (shortest form, no surrogates, at most U+10FFFF).
    void copy_utf8(std::string& out) {
        const auto b0 = static_cast<unsigned char>(m_s[m_i]);
        int len;
        unsigned cp;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
            cp = b0 & 0x1Fu;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            cp = b0 & 0x0Fu;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            cp = b0 & 0x07u;
        } else {
            fail("invalid UTF-8 in a string");
        }
        if (m_s.size() - m_i < static_cast<std::size_t>(len)) fail("truncated UTF-8 sequence in a string");
        for (int k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(m_s[m_i + static_cast<std::size_t>(k)]);
            if ((b & 0xC0u) != 0x80u) fail("invalid UTF-8 in a string");
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            fail("invalid UTF-8 in a string");
        out.append(m_s.substr(m_i, static_cast<std::size_t>(len)));
        m_i += static_cast<std::size_t>(len);
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            const char c = m_s[m_i];
            if (c == '"') {
                ++m_i;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
            if (static_cast<unsigned char>(c) >= 0x80) {
                copy_utf8(out);
                continue;
            }
            if (c != '\\') {
                out.push_back(c);
                ++m_i;
                continue;
            }
            ++m_i;
            if (at_end()) fail("unterminated escape");
            const char e = m_s[m_i++];
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (m_s.substr(m_i, 2) != "\\u") fail("unpaired high surrogate in \\u escape");
                        m_i += 2;
                        const unsigned lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired high surrogate in \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail(std::string("unknown escape '\\") + e + "'");
            }
        }
    }

    std::string_view m_s;
    std::size_t m_i = 0;
};

}  // namespace detail

/// Parses one JSON document (surrounding whitespace allowed). Throws json::parse_error.
inline value parse(std::string_view text) { return detail::parser(text).parse_document(); }

/// `s` as a JSON string literal, quotes included (for writers).
inline std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    static const char* hex = "0123456789abcdef";
                    out += "\\u00";
                    out.push_back(hex[(c >> 4) & 0xF]);
                    out.push_back(hex[c & 0xF]);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace sqakd::io::json
