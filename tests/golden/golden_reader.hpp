// tests/golden/golden_reader.hpp - reader for the golden data of scripts/golden/make_golden_layers.py.
//
// Format (one file per case, tests/data/golden/<case>.txt): lines starting with '#' and blank
// lines are ignored; every other line is one float32 tensor,
//
//     name ndim d0 d1 ... : v0 v1 v2 ...
//
// values row-major, printed with 9 significant digits, so std::strtof (correctly rounded in
// glibc and libc++) returns the exact float32 that PyTorch stored. (Subnormal values are
// accepted even though strtof reports ERANGE for them; only overflow is an error.)
//
// The reader is strict: a wrong value count, a malformed number, a duplicate name or a missing
// ':' is an error::corrupt_file naming the file and the line. golden_file::take(name) throws
// when a tensor is missing, and unused() lists the tensors no test has taken, so a test can
// insist that every expected value in the file was compared.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"

namespace sqakd::golden {

class golden_file {
public:
    golden_file() = default;

    /// Reads `path`; throws error::file_error when it cannot be opened, error::corrupt_file on
    /// content errors.
    static golden_file load(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw error::file_error("golden: cannot open '" + path + "'");
        return parse(in, path);
    }

    /// Parses the format from a stream; `source` names it in error messages.
    static golden_file parse(std::istream& in, const std::string& source) {
        golden_file g;
        g.m_source = source;
        std::string line;
        std::size_t lineno = 0;
        while (std::getline(in, line)) {
            ++lineno;
            if (line.empty() || line[0] == '#' || line.find_first_not_of(" \t\r") == std::string::npos) continue;
            const auto where = [&] { return source + ":" + std::to_string(lineno); };
            const auto colon = line.find(':');
            if (colon == std::string::npos)
                throw error::corrupt_file("golden: " + where() + ": expected 'name ndim dims... : values'");
            std::istringstream head(line.substr(0, colon));
            std::string name;
            long ndim = -1;
            if (!(head >> name >> ndim) || ndim < 0 || ndim > 8)
                throw error::corrupt_file("golden: " + where() + ": bad tensor header '" + line.substr(0, colon) + "'");
            shape_t shape;
            std::size_t count = 1;
            for (long i = 0; i < ndim; ++i) {
                long d = -1;
                if (!(head >> d) || d < 0)
                    throw error::corrupt_file("golden: " + where() + ": tensor '" + name + "' declares " +
                                              std::to_string(ndim) + " dimensions but gives fewer valid sizes");
                shape.push_back(static_cast<std::size_t>(d));
                count *= static_cast<std::size_t>(d);
            }
            std::string extra;
            if (head >> extra)
                throw error::corrupt_file("golden: " + where() + ": tensor '" + name + "' has more sizes than ndim " +
                                          std::to_string(ndim));
            std::vector<float> vals;
            vals.reserve(count);
            const char* p = line.c_str() + colon + 1;
            for (;;) {
                while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
                if (!*p) break;
                char* end = nullptr;
                errno = 0;
                const float v = std::strtof(p, &end);
                if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\r') || (errno == ERANGE && std::isinf(v)))
                    throw error::corrupt_file("golden: " + where() + ": tensor '" + name + "' value " +
                                              std::to_string(vals.size()) + " is not a float32 number");
                vals.push_back(v);
                p = end;
            }
            if (vals.size() != count)
                throw error::corrupt_file("golden: " + where() + ": tensor '" + name + "' of shape " + shape_str(shape) +
                                          " needs " + std::to_string(count) + " values, got " +
                                          std::to_string(vals.size()));
            tensor<float> t(shape);
            std::copy(vals.begin(), vals.end(), t.data());
            if (!g.m_tensors.emplace(name, std::move(t)).second)
                throw error::corrupt_file("golden: " + where() + ": duplicate tensor '" + name + "'");
        }
        return g;
    }

    bool has(const std::string& name) const { return m_tensors.count(name) != 0; }

    /// The tensor `name`, marked as used; throws error::corrupt_file when it is absent. The
    /// reference stays valid as long as this object lives.
    const tensor<float>& take(const std::string& name) {
        auto it = m_tensors.find(name);
        if (it == m_tensors.end())
            throw error::corrupt_file("golden: " + m_source + ": expected tensor '" + name + "' is missing");
        m_used.insert(name);
        return it->second;
    }

    /// Names of the tensors that were never taken.
    std::vector<std::string> unused() const {
        std::vector<std::string> r;
        for (const auto& kv : m_tensors)
            if (!m_used.count(kv.first)) r.push_back(kv.first);
        return r;
    }

    std::size_t size() const { return m_tensors.size(); }
    const std::string& source() const { return m_source; }

private:
    std::string m_source;
    std::map<std::string, tensor<float>> m_tensors;
    std::set<std::string> m_used;
};

}  // namespace sqakd::golden
