// Helpers shared by the example programs: provenance (commit, command line) and result records.
#pragma once

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sqakd/io/file.hpp"

namespace sqakd_examples {

/// Output of a shell command (trimmed), or "" when it fails.
inline std::string shell(const std::string& cmd) {
    std::array<char, 256> buf{};
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen((cmd + " 2>/dev/null").c_str(), "r"), pclose);
    if (!p) return "";
    while (fgets(buf.data(), static_cast<int>(buf.size()), p.get())) out += buf.data();
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

/// The git commit of the source tree the program runs from ("+dirty" when it has
/// uncommitted changes), or "unknown" outside a checkout.
inline std::string git_commit() {
    std::string c = shell("git -C " SQAKD_SOURCE_DIR " rev-parse HEAD");
    if (c.empty()) return "unknown";
    if (!shell("git -C " SQAKD_SOURCE_DIR " status --porcelain --untracked-files=no").empty()) c += "+dirty";
    return c;
}

/// The command line as one string (arguments with spaces quoted).
inline std::string command_line(int argc, char** argv) {
    std::string s;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (i) s += ' ';
        if (a.find_first_of(" \t'\"") != std::string::npos) {
            s += '\'';
            for (char c : a) s += (c == '\'') ? std::string("'\\''") : std::string(1, c);
            s += '\'';
        } else {
            s += a;
        }
    }
    return s;
}

/// Writes `j` (pretty-printed) atomically to `path`.
inline void write_json(const std::string& path, const nlohmann::json& j) {
    sqakd::io::write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace sqakd_examples
