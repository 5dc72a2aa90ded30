// tests/mini_json.hpp — a small strict JSON parser for tests that check
// files goro writes (the execution trace): objects, arrays, strings with
// escapes, numbers, true/false/null. Throws std::runtime_error on malformed
// input, so "it parses" is a real check.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mini_json {

struct value {
    enum kind_t { null, boolean, number, string, array, object } kind = null;
    bool b = false;
    double n = 0;
    std::string s;
    std::vector<value> items;
    std::map<std::string, value> fields;

    const value* get(const std::string& k) const {
        auto it = fields.find(k);
        return it == fields.end() ? nullptr : &it->second;
    }
    std::string str(const std::string& k) const {
        const value* v = get(k);
        return v && v->kind == string ? v->s : std::string();
    }
    double num(const std::string& k, double dflt = -1) const {
        const value* v = get(k);
        return v && v->kind == number ? v->n : dflt;
    }
};

class parser {
  public:
    explicit parser(const std::string& text) : t_(text) {}
    value parse() {
        value v = parse_value();
        skip_ws();
        if (i_ != t_.size()) fail("trailing characters");
        return v;
    }

  private:
    [[noreturn]] void fail(const char* what) {
        throw std::runtime_error(std::string("json: ") + what + " at offset " + std::to_string(i_));
    }
    void skip_ws() {
        while (i_ < t_.size() &&
               (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r'))
            ++i_;
    }
    char peek() {
        skip_ws();
        if (i_ >= t_.size()) fail("unexpected end");
        return t_[i_];
    }
    void expect(char c) {
        if (peek() != c) fail("unexpected character");
        ++i_;
    }
    bool literal(const char* w) {
        const std::string s(w);
        if (t_.compare(i_, s.size(), s) != 0) return false;
        i_ += s.size();
        return true;
    }
    std::string parse_string() {
        expect('"');
        std::string out;
        for (;;) {
            if (i_ >= t_.size()) fail("unterminated string");
            char c = t_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= t_.size()) fail("bad escape");
            c = t_[i_++];
            switch (c) {
                case '"':
                case '\\':
                case '/':
                    out += c;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u':
                    if (i_ + 4 > t_.size()) fail("bad \\u escape");
                    out += static_cast<char>(std::strtol(t_.substr(i_, 4).c_str(), nullptr, 16));
                    i_ += 4;
                    break;
                default:
                    fail("bad escape");
            }
        }
    }
    value parse_value() {
        value v;
        const char c = peek();
        if (c == '{') {
            ++i_;
            v.kind = value::object;
            if (peek() == '}') {
                ++i_;
                return v;
            }
            for (;;) {
                std::string k = parse_string();
                expect(':');
                v.fields[k] = parse_value();
                if (peek() == ',') {
                    ++i_;
                    continue;
                }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            ++i_;
            v.kind = value::array;
            if (peek() == ']') {
                ++i_;
                return v;
            }
            for (;;) {
                v.items.push_back(parse_value());
                if (peek() == ',') {
                    ++i_;
                    continue;
                }
                expect(']');
                return v;
            }
        }
        if (c == '"') {
            v.kind = value::string;
            v.s = parse_string();
            return v;
        }
        if (literal("true")) {
            v.kind = value::boolean;
            v.b = true;
            return v;
        }
        if (literal("false")) {
            v.kind = value::boolean;
            return v;
        }
        if (literal("null")) return v;
        const char* start = t_.c_str() + i_;
        char* end = nullptr;
        v.n = std::strtod(start, &end);
        if (end == start) fail("not a value");
        v.kind = value::number;
        i_ += static_cast<std::size_t>(end - start);
        return v;
    }

    const std::string& t_;
    std::size_t i_ = 0;
};

inline value parse(const std::string& text) {
    return parser(text).parse();
}

}  // namespace mini_json
