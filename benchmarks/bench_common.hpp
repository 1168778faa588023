// Command-line and run scaffolding shared by the sqakd benchmark programs: "--name=value" flags
// of our own next to Google Benchmark's, and the run with the compiler and our settings recorded
// as custom context (they appear in the JSON output that the result writers read).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace sqakd_bench {

/// Parses "--name=value" into `out` (an integer in [0, 1000000]); true when `arg` was that flag.
/// A malformed value ends the program with a message naming the tool and the flag.
inline bool take_flag(const char* tool, const char* arg, const char* name, int& out) {
    const std::size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
    char* end = nullptr;
    const long v = std::strtol(arg + n + 1, &end, 10);
    if (*end != '\0' || v < 0 || v > 1000000) {
        std::fprintf(stderr, "%s: %s expects a non-negative integer, got '%s'\n", tool, name, arg + n + 1);
        std::exit(2);
    }
    out = static_cast<int>(v);
    return true;
}
inline bool take_flag(const char*, const char* arg, const char* name, std::string& out) {
    const std::size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
    out = arg + n + 1;
    return true;
}

/// Adds "key: value" to the run's context (the JSON output's "context" object).
inline void context(const std::string& key, const std::string& value) { benchmark::AddCustomContext(key, value); }

/// Splits argv: `ours(arg)` consumes our flags (returns true), the rest goes to Google Benchmark.
/// Then initialises it (unknown flags are an error), records the compiler, calls `setup` (our
/// flags are parsed by then: it records them with context() and registers the benchmarks) and
/// runs them. Returns the exit status.
inline int run(int argc, char** argv, const std::function<bool(const char*)>& ours, const std::function<void()>& setup) {
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && ours(argv[i])) continue;
        rest.push_back(argv[i]);
    }
    int n = static_cast<int>(rest.size());
    rest.push_back(nullptr);
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
#if defined(__clang__)
    benchmark::AddCustomContext("sqakd_compiler", __VERSION__);  // "... Clang 14.0.6"
#else
    benchmark::AddCustomContext("sqakd_compiler", "g++ " __VERSION__);
#endif
    setup();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace sqakd_bench
