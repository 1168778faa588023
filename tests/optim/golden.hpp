// Reader for the golden files written by scripts/golden/make_golden_optim.py, and a tolerant
// tensor comparison that reports the worst element.
//
// Format: one entry per line, "name ndim d0 d1 ... : v0 v1 ...", '#' lines are comments.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <iomanip>
#include <locale>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sqakd/core/tensor.hpp"

namespace golden {

struct entry {
    sqakd::shape_t shape;
    std::vector<double> values;
};

inline std::string path(const std::string& file) {
    return std::string(SQAKD_TEST_DATA_DIR) + "/golden_optim/" + file;
}

class file {
public:
    explicit file(const std::string& name) : m_name(name) {
        std::ifstream in(path(name));
        if (!in) throw std::runtime_error("golden: cannot open " + path(name));
        std::string line;
        std::size_t line_no = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (line.empty() || line[0] == '#') continue;
            std::istringstream is(line);
            is.imbue(std::locale::classic());
            std::string key, colon;
            std::size_t ndim = 0;
            entry e;
            is >> key >> ndim;
            std::size_t count = 1;
            for (std::size_t i = 0; i < ndim; ++i) {
                std::size_t d = 0;
                is >> d;
                e.shape.push_back(d);
                count *= d;
            }
            is >> colon;
            if (!is || colon != ":")
                throw std::runtime_error("golden: " + name + ":" + std::to_string(line_no) +
                                         ": malformed entry header");
            for (std::size_t i = 0; i < count; ++i) {
                double v = 0;
                is >> v;
                if (!is)
                    throw std::runtime_error("golden: " + name + ":" + std::to_string(line_no) +
                                             ": expected " + std::to_string(count) + " values");
                e.values.push_back(v);
            }
            std::string extra;
            if (is >> extra)
                throw std::runtime_error("golden: " + name + ":" + std::to_string(line_no) +
                                         ": more values than the shape holds");
            m_entries[key] = std::move(e);
        }
    }

    bool has(const std::string& key) const { return m_entries.count(key) != 0; }

    const entry& at(const std::string& key) const {
        auto it = m_entries.find(key);
        if (it == m_entries.end())
            throw std::runtime_error("golden: " + m_name + " has no entry '" + key + "'");
        return it->second;
    }

    double scalar(const std::string& key) const {
        const entry& e = at(key);
        if (e.values.size() != 1)
            throw std::runtime_error("golden: " + m_name + ": '" + key + "' is not a scalar");
        return e.values[0];
    }

    const std::vector<double>& values(const std::string& key) const { return at(key).values; }

    /// The entry as a tensor<T> (values rounded to T once).
    template <class T>
    sqakd::tensor<T> tensor(const std::string& key) const {
        const entry& e = at(key);
        sqakd::tensor<T> t(e.shape.empty() ? sqakd::shape_t{1} : e.shape);
        for (std::size_t i = 0; i < e.values.size(); ++i) t.data()[i] = static_cast<T>(e.values[i]);
        return t;
    }

private:
    std::string m_name;
    std::map<std::string, entry> m_entries;
};

/// Element-wise |actual - expected| <= rtol * |expected| + atol, over the whole tensor; on
/// failure reports the worst element (index, both values, its error in units of the bound).
template <class T>
void check_close(const std::string& what, const sqakd::tensor<T>& actual, const entry& expected,
                 double rtol, double atol) {
    const std::size_t n = expected.values.size();
    REQUIRE_MESSAGE(actual.size() == n, what << ": size " << actual.size() << ", expected " << n);
    double worst = 0;
    std::size_t worst_i = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double a = static_cast<double>(actual.data()[i]);
        const double e = expected.values[i];
        const double bound = rtol * std::fabs(e) + atol;
        const double ratio = std::isfinite(a) ? std::fabs(a - e) / bound : HUGE_VAL;
        if (ratio > worst) {
            worst = ratio;
            worst_i = i;
        }
    }
    CHECK_MESSAGE(worst <= 1.0, what << std::setprecision(10) << ": element " << worst_i << " is "
                                     << static_cast<double>(actual.data()[worst_i]) << ", expected "
                                     << expected.values[worst_i] << " (error " << worst
                                     << " x the bound rtol=" << rtol << ", atol=" << atol << ")");
}

inline void check_close(const std::string& what, double actual, double expected, double rtol,
                        double atol) {
    const double bound = rtol * std::fabs(expected) + atol;
    CHECK_MESSAGE(std::fabs(actual - expected) <= bound,
                  what << std::setprecision(17) << ": " << actual << ", expected " << expected << " (rtol=" << rtol
                       << ", atol=" << atol << ")");
}

}  // namespace golden
