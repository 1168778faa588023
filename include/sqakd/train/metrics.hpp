// sqakd/train/metrics.hpp - metrics as JSON lines.
//
//   train::metrics_log log("runs/teacher_seed0/metrics.jsonl");   // appends
//   log.write({{"epoch", 3}, {"loss", 0.41}, {"top1", 91.2}, {"phase", "train"}});
//
// One JSON object per line, flushed after each write, so a killed run keeps every line it
// wrote and a resumed run appends. Values are numbers, strings or booleans; non-finite numbers
// are written as null (JSON has no NaN).
#pragma once

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/io/json.hpp"

namespace sqakd::train {

using metric_value = std::variant<double, long long, std::string, bool>;

struct metric {
    std::string key;
    metric_value value;
    metric(std::string k, double v) : key(std::move(k)), value(v) {}
    metric(std::string k, int v) : key(std::move(k)), value(static_cast<long long>(v)) {}
    metric(std::string k, long v) : key(std::move(k)), value(static_cast<long long>(v)) {}
    metric(std::string k, long long v) : key(std::move(k)), value(v) {}
    metric(std::string k, unsigned long v) : key(std::move(k)), value(static_cast<long long>(v)) {}
    metric(std::string k, unsigned long long v) : key(std::move(k)), value(static_cast<long long>(v)) {}
    metric(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
    metric(std::string k, const char* v) : key(std::move(k)), value(std::string(v)) {}
    metric(std::string k, bool v) : key(std::move(k)), value(v) {}
};

/// One JSON object on one line.
inline std::string to_json_line(const std::vector<metric>& fields) {
    std::string s = "{";
    bool first = true;
    for (const auto& f : fields) {
        if (!first) s += ", ";
        first = false;
        s += io::json::quote(f.key) + ": ";
        if (auto d = std::get_if<double>(&f.value)) {
            if (std::isfinite(*d)) {
                char b[32];
                std::snprintf(b, sizeof b, "%.9g", *d);
                s += b;
            } else {
                s += "null";
            }
        } else if (auto i = std::get_if<long long>(&f.value)) {
            s += std::to_string(*i);
        } else if (auto str = std::get_if<std::string>(&f.value)) {
            s += io::json::quote(*str);
        } else {
            s += std::get<bool>(f.value) ? "true" : "false";
        }
    }
    return s + "}";
}

class metrics_log {
public:
    metrics_log() = default;
    /// Opens `path` for appending (creates it). Throws error::file_error naming the path.
    explicit metrics_log(const std::string& path) : m_path(path) {
        m_out.open(path, std::ios::app);
        if (!m_out) throw error::file_error(path + ": cannot open the metrics log for appending");
    }
    bool is_open() const { return m_out.is_open(); }
    const std::string& path() const { return m_path; }

    void write(const std::vector<metric>& fields) {
        if (!m_out.is_open()) return;
        m_out << to_json_line(fields) << '\n';
        m_out.flush();
        if (!m_out) throw error::file_error(m_path + ": write failed");
    }

private:
    std::string m_path;
    std::ofstream m_out;
};

}  // namespace sqakd::train
