// sqakd/train/progress.hpp - a progress bar with rate and ETA for long-running loops.
//
//   train::progress bar("epoch 3/8", num_batches, "img");
//   for (...) { ...; bar.advance(1, batch_size, {{"loss", loss}}); }
//   bar.finish();
//
// On a terminal the bar redraws in place (at most ~10 times a second); when stderr is not a
// terminal (CI logs, files) it prints a line at every 10% instead, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace sqakd::train {

class progress {
public:
    using clock = std::chrono::steady_clock;

    progress(std::string label, std::size_t total, std::string unit = "it", std::FILE* out = stderr,
             bool enabled = true)
        : m_label(std::move(label)), m_unit(std::move(unit)), m_total(total), m_out(out), m_enabled(enabled),
          m_start(clock::now()), m_last_draw(m_start) {
#if defined(__unix__) || defined(__APPLE__)
        m_tty = isatty(fileno(out)) != 0;
#endif
    }

    /// Advance by `steps` of `total`, having processed `items` units (images); `fields` are
    /// shown after the bar (e.g. the running loss).
    void advance(std::size_t steps, std::size_t items = 0,
                 const std::vector<std::pair<std::string, double>>& fields = {}) {
        m_done += steps;
        m_items += items;
        m_fields = fields;
        if (!m_enabled) return;
        const auto now = clock::now();
        if (m_tty) {
            if (now - m_last_draw > std::chrono::milliseconds(100) || m_done >= m_total) {
                draw(now, '\r');
                m_last_draw = now;
            }
        } else if (m_total > 0) {
            const std::size_t decile = m_done * 10 / m_total;
            if (decile > m_last_decile) {
                m_last_decile = decile;
                draw(now, '\n');
            }
        }
    }

    void finish() {
        if (!m_enabled || m_finished) return;
        m_finished = true;
        if (m_tty) {
            draw(clock::now(), '\r');
            std::fputc('\n', m_out);
        }
        std::fflush(m_out);
    }

    ~progress() { finish(); }
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    double elapsed_seconds() const { return std::chrono::duration<double>(clock::now() - m_start).count(); }
    std::size_t items() const { return m_items; }

private:
    static std::string fmt_time(double s) {
        if (!(s >= 0) || s > 1e7) return "--:--";
        const long t = static_cast<long>(s + 0.5);
        char buf[32];
        if (t >= 3600)
            std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
        else
            std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
        return buf;
    }

    void draw(clock::time_point now, char end) {
        const double el = std::chrono::duration<double>(now - m_start).count();
        const double frac = m_total ? static_cast<double>(m_done) / static_cast<double>(m_total) : 1.0;
        constexpr int width = 24;
        const int filled = static_cast<int>(frac * width);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        const double rate = el > 0 ? static_cast<double>(m_items ? m_items : m_done) / el : 0.0;
        const double eta = (m_done > 0 && m_done < m_total) ? el * static_cast<double>(m_total - m_done) /
                                                                  static_cast<double>(m_done)
                                                            : 0.0;
        std::string extra;
        for (const auto& [k, v] : m_fields) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " %s %.4g", k.c_str(), v);
            extra += buf;
        }
        std::fprintf(m_out, "%s %s [%s] %3.0f%% %zu/%zu %.1f %s/s elapsed %s eta %s%s%c", end == '\r' ? "\r" : "",
                     m_label.c_str(), bar.c_str(), frac * 100.0, m_done, m_total, rate,
                     (m_items ? m_unit : std::string("it")).c_str(), fmt_time(el).c_str(), fmt_time(eta).c_str(),
                     extra.c_str(), end == '\n' ? '\n' : ' ');
        std::fflush(m_out);
    }

    std::string m_label, m_unit;
    std::size_t m_total, m_done = 0, m_items = 0, m_last_decile = 0;
    std::FILE* m_out;
    bool m_enabled, m_tty = false, m_finished = false;
    clock::time_point m_start, m_last_draw;
    std::vector<std::pair<std::string, double>> m_fields;
};

}  // namespace sqakd::train
