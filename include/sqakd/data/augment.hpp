// sqakd/data/augment.hpp - the SQAKD training augmentation on one uint8 image, and normalisation.
//
// Order (SQAKD.md section 5, as torchvision's RandomCrop(H, padding=P) -> RandomHorizontalFlip
// -> ToTensor -> Normalize): on raw pixels scaled to [0, 1], zero-pad by P on every side and
// crop an H x W window at a random offset (dy, dx) in [0, 2P] x [0, 2P] of the padded image;
// mirror left-right with probability p; then (x - mean[c]) / std[c]. Padding is zero *before*
// normalisation, so a padded pixel becomes (0 - mean[c]) / std[c]. Test data: normalise only.
//
// The arithmetic is torchvision's in float: x = float(v) / 255.0f, then (x - mean) / std; a
// 256-entry table per channel holds the results, so each output pixel is one lookup.
//
//   data::normalizer nz(1, {data::fashion_mnist_mean}, {data::fashion_mnist_std});
//   data::augment_params a{3, 1, true};                // crop at (3, 1) of the padded image, flip
//   data::augment_image(src, 1, 28, 28, 2, a, nz, dst); // dst: 784 floats
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/rng.hpp"

namespace sqakd::data {

/// Fashion-MNIST training-set pixel mean and standard deviation (SQAKD.md section 5).
inline constexpr float fashion_mnist_mean = 0.2860406f;
inline constexpr float fashion_mnist_std = 0.3530242f;
/// MNIST training-set statistics (the usual values).
inline constexpr float mnist_mean = 0.1307f;
inline constexpr float mnist_std = 0.3081f;

/// Per-channel mean and standard deviation of a dataset, on pixels in [0, 1].
struct channel_stats {
    std::vector<float> mean, std;
};

inline channel_stats fashion_mnist_stats() { return {{fashion_mnist_mean}, {fashion_mnist_std}}; }
inline channel_stats mnist_stats() { return {{mnist_mean}, {mnist_std}}; }
/// CIFAR-10 training-set per-channel statistics (RGB). Many repositories use the std
/// (0.2023, 0.1994, 0.2010) instead, a historical mistake; pass it explicitly to match them.
inline channel_stats cifar10_stats() { return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}; }
/// CIFAR-100 training-set per-channel statistics (RGB).
inline channel_stats cifar100_stats() { return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}}; }

/// Maps a uint8 pixel of channel c to (v / 255 - mean[c]) / std[c] by table lookup.
class normalizer {
public:
    /// Identity scaling to [0, 1] for one channel.
    normalizer() : normalizer(1, {}, {}) {}

    /// `mean` and `stddev` hold one value per channel, or one value for all channels, or nothing
    /// (mean 0, std 1: scaling to [0, 1] only). Throws error::invalid_value naming `who` and
    /// the parameter when a size is wrong, a mean is not finite, or a std is not finite and > 0.
    normalizer(std::size_t channels, const std::vector<float>& mean, const std::vector<float>& stddev,
               const std::string& who = "normalizer")
        : m_channels(channels), m_lut(channels * 256) {
        check_size(who, "mean", mean.size());
        check_size(who, "std", stddev.size());
        for (std::size_t i = 0; i < mean.size(); ++i)
            if (!std::isfinite(mean[i])) throw bad(who, "mean", i, mean[i], "must be finite");
        for (std::size_t i = 0; i < stddev.size(); ++i)
            if (!std::isfinite(stddev[i]) || !(stddev[i] > 0.0f))
                throw bad(who, "std", i, stddev[i], "must be finite and > 0");
        for (std::size_t c = 0; c < channels; ++c) {
            const float m = mean.empty() ? 0.0f : mean[mean.size() == 1 ? 0 : c];
            const float s = stddev.empty() ? 1.0f : stddev[stddev.size() == 1 ? 0 : c];
            for (int v = 0; v < 256; ++v) m_lut[c * 256 + static_cast<std::size_t>(v)] =
                (static_cast<float>(v) / 255.0f - m) / s;
        }
    }

    std::size_t channels() const { return m_channels; }
    /// The normalised value of pixel v in channel c.
    float operator()(std::size_t c, std::uint8_t v) const { return m_lut[c * 256 + v]; }
    /// The 256-entry table of channel c.
    const float* table(std::size_t c) const { return m_lut.data() + c * 256; }

private:
    void check_size(const std::string& who, const char* what, std::size_t n) const {
        if (n == 0 || n == 1 || n == m_channels) return;
        throw error::invalid_value(who + ": " + what + " has " + std::to_string(n) +
                                   " values, expected 1 or " + std::to_string(m_channels) +
                                   " (one per channel)");
    }
    static error::invalid_value bad(const std::string& who, const char* what, std::size_t i, float v,
                                    const char* rule) {
        std::ostringstream os;
        os << who << ": " << what << '[' << i << "] " << rule << ", got " << v;
        return error::invalid_value(os.str());
    }

    std::size_t m_channels;
    std::vector<float> m_lut;
};

/// One draw of the training augmentation: the crop's top-left corner in the padded image
/// (each in [0, 2 * pad]) and whether to mirror.
struct augment_params {
    std::size_t dy = 0, dx = 0;
    bool flip = false;
};

/// Draws the crop offset (dy, then dx, each uniform in [0, 2 * pad]) and the flip
/// (g.uniform() < flip_p; always drawn, so the stream does not depend on p).
inline augment_params draw_augment(rng& g, std::size_t pad, double flip_p) {
    augment_params a;
    a.dy = static_cast<std::size_t>(g.below(2 * pad + 1));
    a.dx = static_cast<std::size_t>(g.below(2 * pad + 1));
    a.flip = g.uniform() < flip_p;
    return a;
}

/// dst[c, y, x] = normalised src[c, y, x] (test-time transform). src and dst hold C*H*W values.
inline void normalize_image(const std::uint8_t* src, std::size_t c, std::size_t h, std::size_t w,
                            const normalizer& nz, float* dst) {
    const std::size_t plane = h * w;
    for (std::size_t ch = 0; ch < c; ++ch) {
        const float* t = nz.table(ch);
        const std::uint8_t* s = src + ch * plane;
        float* d = dst + ch * plane;
        for (std::size_t i = 0; i < plane; ++i) d[i] = t[s[i]];
    }
}

/// The training transform of one image: pad by `pad`, crop H x W at (a.dy, a.dx), mirror if
/// a.flip, normalise. Reads C*H*W bytes from src, writes C*H*W floats to dst:
///   crop[y][x] = src[y + dy - pad][x + dx - pad] (0 outside the image)
///   dst[y][x]  = nz(crop[y][flip ? W-1-x : x])
inline void augment_image(const std::uint8_t* src, std::size_t c, std::size_t h, std::size_t w,
                          std::size_t pad, const augment_params& a, const normalizer& nz, float* dst) {
    using sz = std::ptrdiff_t;
    const sz oy = static_cast<sz>(a.dy) - static_cast<sz>(pad);
    const sz ox = static_cast<sz>(a.dx) - static_cast<sz>(pad);
    const sz H = static_cast<sz>(h), W = static_cast<sz>(w);
    for (std::size_t ch = 0; ch < c; ++ch) {
        const float* t = nz.table(ch);
        const float zero = t[0];
        const std::uint8_t* s = src + ch * h * w;
        for (sz y = 0; y < H; ++y) {
            float* d = dst + (ch * h + static_cast<std::size_t>(y)) * w;
            const sz sy = y + oy;
            if (sy < 0 || sy >= H) {
                for (sz x = 0; x < W; ++x) d[x] = zero;
                continue;
            }
            const std::uint8_t* row = s + static_cast<std::size_t>(sy) * w;
            for (sz x = 0; x < W; ++x) {
                const sz sx = (a.flip ? W - 1 - x : x) + ox;
                d[x] = (sx < 0 || sx >= W) ? zero : t[row[sx]];
            }
        }
    }
}

}  // namespace sqakd::data
