// Helpers shared by the example programs: provenance (commit, command line), result records and
// the Fashion-MNIST loaders of the recipes.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sqakd/data.hpp"
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

/// Test top-1 of every epoch (index e - 1) as recorded in run_dir/metrics.jsonl; -1 where a
/// line is missing (an empty run_dir gives all -1).
inline std::vector<double> read_epoch_top1(const std::string& run_dir, std::size_t epochs) {
    std::vector<double> top1(epochs, -1.0);
    if (run_dir.empty()) return top1;
    std::ifstream in(run_dir + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || j.value("phase", "") != "epoch" || !j.contains("epoch")) continue;
        const auto e = j["epoch"].get<std::size_t>();
        if (e >= 1 && e <= epochs && j["test_top1"].is_number()) top1[e - 1] = j["test_top1"].get<double>();
    }
    return top1;
}

/// Mean of the known (>= 0) values among the last three epochs; -1 when there is none.
inline double last3_mean(const std::vector<double>& top1) {
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t e = top1.size() >= 3 ? top1.size() - 3 : 0; e < top1.size(); ++e)
        if (top1[e] >= 0) sum += top1[e], ++n;
    return n ? sum / static_cast<double>(n) : -1;
}

/// Fills a recipe result from its run: the per-epoch top-1 (epochs of earlier calls of a resumed
/// run from metrics.jsonl, this call's from `records`), this call's seconds and last rate, and,
/// when out.complete, the final top-1 and the mean of the last 3 epochs.
template <class Out, class Records>
void fill_epoch_results(Out& out, const std::string& run_dir, std::size_t epochs, const Records& records) {
    out.per_epoch_top1 = read_epoch_top1(run_dir, epochs);
    for (const auto& r : records) {
        out.per_epoch_top1[r.epoch - 1] = r.test_top1;
        out.seconds += r.seconds;
    }
    if (!records.empty()) out.images_per_sec = records.back().images_per_sec;
    if (!out.complete) return;
    out.top1 = out.per_epoch_top1.back();
    out.last3_top1 = last3_mean(out.per_epoch_top1);
}

/// Writes `j` (pretty-printed) atomically to `path`.
inline void write_json(const std::string& path, const nlohmann::json& j) {
    sqakd::io::write_file_atomic(path, j.dump(2) + "\n");
}

/// The recipes' Fashion-MNIST data: the training loader (shuffled with `seed`, augmented) and the
/// test loader (in order), both normalised; a subset size of 0 means the whole split. The loaders
/// point into the datasets held here, so this object stays where it is built.
struct fmnist_loaders {
    sqakd::data::dataset train_ds, test_ds;
    sqakd::data::loader train, test;

    fmnist_loaders(const std::string& dir, std::size_t batch, std::uint64_t seed, std::size_t train_subset = 0,
                   std::size_t test_subset = 0)
        : train_ds(load(dir, sqakd::data::split::train, train_subset)),
          test_ds(load(dir, sqakd::data::split::test, test_subset)),
          train(train_ds, options(batch, seed, true)),
          test(test_ds, options(batch, seed, false)) {}
    fmnist_loaders(const fmnist_loaders&) = delete;
    fmnist_loaders& operator=(const fmnist_loaders&) = delete;

private:
    static sqakd::data::dataset load(const std::string& dir, sqakd::data::split sp, std::size_t subset) {
        auto ds = sqakd::data::load_fashion_mnist(dir, sp);
        return subset ? ds.subset(0, std::min(subset, ds.size())) : ds;
    }
    static sqakd::data::loader_options options(std::size_t batch, std::uint64_t seed, bool training) {
        auto o = sqakd::data::loader_options::evaluation(batch, sqakd::data::fashion_mnist_stats());
        o.shuffle = o.augment = training;
        o.seed = seed;
        return o;
    }
};

}  // namespace sqakd_examples
