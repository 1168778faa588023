// sqakd/data/loader.hpp - seeded, reproducible float batches from a dataset.
//
//   data::loader_options opt;
//   opt.batch_size = 256;
//   opt.augment = true;                              // pad + random crop, flip (training)
//   opt.mean = {data::fashion_mnist_mean};
//   opt.std = {data::fashion_mnist_std};
//   opt.seed = 1;
//   data::loader train(ds, opt);
//   for (std::size_t e = 0; e < epochs; ++e) {
//       train.set_epoch(e);
//       for (const auto& b : train)                  // b.images [B, C, H, W], b.labels [B]
//           step(b.images, b.labels);
//   }
//   // or, reusing your own buffers: train.batch(i, images, labels) for i < num_batches()
//
//   data::unlabeled_loader free(ds, opt);            // same images, no labels (SQAKD training)
//   static_assert(!data::has_labels_v<decltype(free)>);
//
// Reproducibility: the order of epoch e is a Fisher-Yates shuffle driven by
// rng(stream_seed(seed, e, shuffle_stream, 0)), and the augmentation of the sample at
// position k of epoch e (k = b * batch_size + j) draws from rng(stream_seed(seed, e,
// augment_stream, k)). Both depend only on (seed, epoch, position): a resumed run that calls
// set_epoch(e) reproduces epoch e exactly, batches can be built in any order or concurrently
// (batch() is const), and the result is the same for any thread count. The labelled and the
// unlabeled loader share this code, so with equal options they give identical images.
//
// The dataset is held by reference and must outlive the loader.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/parallel.hpp"
#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/data/augment.hpp"
#include "sqakd/data/dataset.hpp"

namespace sqakd::data {

struct loader_options {
    /// Samples per batch (> 0).
    std::size_t batch_size = 256;
    /// A new seeded permutation each epoch; false keeps the dataset order.
    bool shuffle = true;
    /// Training augmentation (pad + random crop, then flip); false: normalise only (test).
    bool augment = false;
    /// Zero padding before the random crop; -1 picks SQAKD's: 4 when height and width are both
    /// >= 32 (CIFAR), else 2 (28x28 MNIST-like). Used only when augment is true.
    int pad = -1;
    /// Probability of a horizontal flip, in [0, 1] (0 never, 1 always). Used only when augment.
    double flip = 0.5;
    /// Per-channel normalisation on pixels in [0, 1]: one value per channel or one for all.
    /// Empty mean = 0, empty std = 1 (no normalisation). E.g. fashion_mnist_stats().
    std::vector<float> mean{};
    std::vector<float> std{};
    /// Drop the last batch when it is smaller than batch_size (default: keep it).
    bool drop_last = false;
    /// Seed of the shuffle and of the augmentation.
    std::uint64_t seed = 0;

    /// Sets mean and std from per-channel statistics, e.g. opt.normalize(cifar10_stats()).
    loader_options& normalize(const channel_stats& s) {
        mean = s.mean;
        std = s.std;
        return *this;
    }
    /// Options for evaluation: in order, no augmentation, normalised with s.
    ///   data::loader test(test_ds, data::loader_options::evaluation(500, data::fashion_mnist_stats()));
    static loader_options evaluation(std::size_t batch, const channel_stats& s) {
        loader_options o;
        o.batch_size = batch;
        o.shuffle = false;
        o.augment = false;
        o.normalize(s);
        return o;
    }
};

/// The random streams of the loaders (see the header comment).
inline constexpr std::uint64_t shuffle_stream = 1;
inline constexpr std::uint64_t augment_stream = 2;

/// A 64-bit hash of (seed, epoch, stream, position): splitmix64's finaliser applied after
/// each part is mixed in, so nearby inputs give unrelated seeds.
inline std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t epoch, std::uint64_t stream,
                                 std::uint64_t position) {
    auto mix = [](std::uint64_t z) {
        z += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    std::uint64_t h = mix(seed);
    h = mix(h ^ epoch);
    h = mix(h ^ stream);
    return mix(h ^ position);
}

/// A batch with labels: images [B, C, H, W], labels [B], and its index in the epoch.
struct labeled_batch {
    tensor<float> images;
    std::vector<std::int32_t> labels;
    std::size_t index = 0;
};

/// A batch of images only.
struct image_batch {
    tensor<float> images;
    std::size_t index = 0;
};

/// Input iterator over the batches of an epoch; the batch is built when first dereferenced
/// and lives in the iterator (buffers are reused from one batch to the next).
template <class Loader, class Batch>
class batch_iterator {
public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    batch_iterator() = default;
    batch_iterator(const Loader* l, std::size_t b) : m_loader(l), m_index(b) {}

    reference operator*() const {
        if (!m_filled) {
            m_loader->fill(m_index, m_batch);
            m_filled = true;
        }
        return m_batch;
    }
    pointer operator->() const { return &**this; }
    batch_iterator& operator++() {
        ++m_index;
        m_filled = false;
        return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const batch_iterator& a, const batch_iterator& b) { return a.m_index == b.m_index; }
    friend bool operator!=(const batch_iterator& a, const batch_iterator& b) { return !(a == b); }

private:
    const Loader* m_loader = nullptr;
    std::size_t m_index = 0;
    mutable Batch m_batch{};
    mutable bool m_filled = false;
};

namespace detail {

// What the labelled and the unlabeled loader share: options, order of the epoch, images.
class batch_engine {
public:
    batch_engine(const dataset& ds, loader_options opt, const char* who)
        : m_ds(&ds), m_opt(std::move(opt)), m_who(who) {
        if (m_opt.batch_size == 0)
            throw error::invalid_value(m_who + ": loader_options.batch_size must be > 0");
        if (m_opt.pad < -1)
            throw error::invalid_value(m_who + ": loader_options.pad must be >= 0 (or -1 for the default), got " +
                                       std::to_string(m_opt.pad));
        if (!(m_opt.flip >= 0.0 && m_opt.flip <= 1.0))  // also rejects NaN
            throw error::invalid_value(m_who + ": loader_options.flip must be a probability in [0, 1], got " +
                                       std::to_string(m_opt.flip));
        m_norm = normalizer(std::max<std::size_t>(1, ds.channels()), m_opt.mean, m_opt.std,
                            m_who + ": loader_options");
        m_pad = m_opt.pad >= 0 ? static_cast<std::size_t>(m_opt.pad)
                               : (ds.height() >= 32 && ds.width() >= 32 ? 4 : 2);
        const std::size_t per = std::max<std::size_t>(1, ds.sample_size());
        m_min_per_thread = std::max<std::size_t>(1, (std::size_t{1} << 14) / per);
        set_epoch(0);
    }

    void set_epoch(std::size_t e) {
        m_epoch = e;
        const std::size_t n = m_ds->size();
        m_order.resize(n);
        for (std::size_t i = 0; i < n; ++i) m_order[i] = i;
        if (!m_opt.shuffle || n < 2) return;
        rng g(stream_seed(m_opt.seed, e, shuffle_stream, 0));
        for (std::size_t i = n - 1; i > 0; --i) std::swap(m_order[i], m_order[g.below(i + 1)]);
    }
    std::size_t epoch() const { return m_epoch; }

    std::size_t num_batches() const {
        const std::size_t n = m_ds->size(), b = m_opt.batch_size;
        return m_opt.drop_last ? n / b : (n + b - 1) / b;
    }
    std::size_t samples_per_epoch() const {
        return m_opt.drop_last ? num_batches() * m_opt.batch_size : m_ds->size();
    }
    std::size_t batch_size(std::size_t b) const {
        check_batch(b);
        return std::min(m_opt.batch_size, m_ds->size() - b * m_opt.batch_size);
    }
    const std::vector<std::size_t>& order() const { return m_order; }
    const dataset& data() const { return *m_ds; }
    const loader_options& options() const { return m_opt; }
    std::size_t pad() const { return m_pad; }
    void rename(const char* who) { m_who = who; }

    void fill_images(std::size_t b, tensor<float>& images) const {
        const std::size_t count = batch_size(b), first = b * m_opt.batch_size;
        const dataset& ds = *m_ds;
        const std::size_t c = ds.channels(), h = ds.height(), w = ds.width(), per = ds.sample_size();
        ensure_shape(images, shape_t{count, c, h, w});
        float* out = images.data();
        parallel_for(
            count,
            [&](std::size_t lo, std::size_t hi, int) {
                for (std::size_t j = lo; j < hi; ++j) {
                    const std::uint8_t* src = ds.image(m_order[first + j]);
                    float* dst = out + j * per;
                    if (m_opt.augment) {
                        rng g(stream_seed(m_opt.seed, m_epoch, augment_stream, first + j));
                        augment_image(src, c, h, w, m_pad, draw_augment(g, m_pad, m_opt.flip), m_norm, dst);
                    } else {
                        normalize_image(src, c, h, w, m_norm, dst);
                    }
                }
            },
            m_min_per_thread);
    }

    void fill_labels(std::size_t b, std::vector<std::int32_t>& labels) const {
        const std::size_t count = batch_size(b), first = b * m_opt.batch_size;
        labels.resize(count);
        for (std::size_t j = 0; j < count; ++j) labels[j] = m_ds->label(m_order[first + j]);
    }

private:
    void check_batch(std::size_t b) const {
        if (b >= num_batches())
            throw error::invalid_value(m_who + ": batch index " + std::to_string(b) + " is out of range [0, " +
                                       std::to_string(num_batches()) + ") for " + m_ds->name());
    }

    const dataset* m_ds;
    loader_options m_opt;
    std::string m_who;
    normalizer m_norm;
    std::size_t m_pad = 0;
    std::size_t m_min_per_thread = 1;
    std::size_t m_epoch = 0;
    std::vector<std::size_t> m_order;
};

}  // namespace detail

/// Batches of (images, labels). The dataset must have labels.
class loader {
public:
    /// Trainers check this at compile time through has_labels_v.
    static constexpr bool has_labels = true;
    using batch_type = labeled_batch;
    using iterator = batch_iterator<loader, labeled_batch>;

    /// Throws error::invalid_value for bad options (naming the option) or an unlabeled dataset.
    loader(const dataset& ds, loader_options opt = {}) : m_engine(ds, std::move(opt), "loader") {
        if (!ds.has_labels())
            throw error::invalid_value("loader: dataset " + ds.name() +
                                       " has no labels; use unlabeled_loader for label-free training");
    }
    loader(const dataset&&, loader_options = {}) = delete;  // the dataset must outlive the loader

    /// Selects epoch e: its order, and its augmentation draws.
    void set_epoch(std::size_t e) { m_engine.set_epoch(e); }
    std::size_t epoch() const { return m_engine.epoch(); }
    std::size_t num_batches() const { return m_engine.num_batches(); }
    /// Samples in batch b (batch_size, or fewer for the last one).
    std::size_t batch_size(std::size_t b) const { return m_engine.batch_size(b); }
    /// Samples visited per epoch (the dataset size, less the dropped tail when drop_last).
    std::size_t samples_per_epoch() const { return m_engine.samples_per_epoch(); }
    /// Dataset indices in the order of the current epoch.
    const std::vector<std::size_t>& order() const { return m_engine.order(); }
    const dataset& data() const { return m_engine.data(); }
    const loader_options& options() const { return m_engine.options(); }
    /// The padding in use (options().pad, or the default it resolved to).
    std::size_t pad() const { return m_engine.pad(); }

    /// Fills images [B, C, H, W] (resized only when the shape differs) and labels [B] with
    /// batch b of the current epoch. Throws error::invalid_value when b >= num_batches().
    void batch(std::size_t b, tensor<float>& images, std::vector<std::int32_t>& labels) const {
        m_engine.fill_images(b, images);
        m_engine.fill_labels(b, labels);
    }
    /// Only the images of batch b (identical to batch()'s).
    void images(std::size_t b, tensor<float>& images) const { m_engine.fill_images(b, images); }
    void fill(std::size_t b, labeled_batch& out) const {
        batch(b, out.images, out.labels);
        out.index = b;
    }

    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, num_batches()); }

private:
    friend class unlabeled_loader;
    detail::batch_engine m_engine;
};

/// Batches of images only, for label-free training (SQAKD). Accepts datasets with or without
/// labels; with the same options and epoch it gives exactly the images of `loader`.
class unlabeled_loader {
public:
    static constexpr bool has_labels = false;
    using batch_type = image_batch;
    using iterator = batch_iterator<unlabeled_loader, image_batch>;

    unlabeled_loader(const dataset& ds, loader_options opt = {})
        : m_engine(ds, std::move(opt), "unlabeled_loader") {}
    unlabeled_loader(const dataset&&, loader_options = {}) = delete;
    /// The images of a labelled loader (same dataset, options and current epoch).
    explicit unlabeled_loader(const loader& l) : m_engine(l.m_engine) { m_engine.rename("unlabeled_loader"); }

    void set_epoch(std::size_t e) { m_engine.set_epoch(e); }
    std::size_t epoch() const { return m_engine.epoch(); }
    std::size_t num_batches() const { return m_engine.num_batches(); }
    std::size_t batch_size(std::size_t b) const { return m_engine.batch_size(b); }
    std::size_t samples_per_epoch() const { return m_engine.samples_per_epoch(); }
    const std::vector<std::size_t>& order() const { return m_engine.order(); }
    const dataset& data() const { return m_engine.data(); }
    const loader_options& options() const { return m_engine.options(); }
    std::size_t pad() const { return m_engine.pad(); }

    /// Fills images [B, C, H, W] with batch b of the current epoch.
    void batch(std::size_t b, tensor<float>& images) const { m_engine.fill_images(b, images); }
    void fill(std::size_t b, image_batch& out) const {
        batch(b, out.images);
        out.index = b;
    }

    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, num_batches()); }

private:
    detail::batch_engine m_engine;
};

/// True when a batch source L yields labels (L::has_labels is true), false otherwise, e.g.
///   static_assert(!Loss::needs_labels || data::has_labels_v<L>,
///                 "this loss needs labels, but the data source is unlabeled");
template <class L, class = void>
struct has_labels : std::false_type {};
template <class L>
struct has_labels<L, std::void_t<decltype(L::has_labels)>> : std::bool_constant<bool(L::has_labels)> {};
template <class L>
inline constexpr bool has_labels_v = has_labels<std::remove_cv_t<std::remove_reference_t<L>>>::value;

}  // namespace sqakd::data
