// sqakd/data/dataset.hpp - an in-memory image dataset: uint8 pixels [N, C, H, W] and labels.
//
// The readers (idx.hpp, cifar.hpp) return one of these; the loaders (loader.hpp) turn it into
// float batches. Pixels stay uint8 in memory (60000 Fashion-MNIST images are 47 MB, not 188 MB
// as float) and are scaled, augmented and normalised per batch.
//
//   auto train = sqakd::data::load_fashion_mnist();          // 60000 x 1 x 28 x 28
//   auto small = train.subset(0, 1000);                      // first 1000, for CI runs
//   std::int32_t y = small.label(3);
//   const std::uint8_t* px = small.image(3);                 // C*H*W bytes, channel planes
//
// A dataset may have no labels at all (labels() empty): only unlabeled_loader accepts it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"

namespace sqakd::data {

/// Which half of a dataset to read.
enum class split { train, test };

inline const char* to_string(split s) { return s == split::train ? "train" : "test"; }

class dataset {
public:
    dataset() = default;

    /// Takes `images` (N*C*H*W bytes, sample-major, each sample C planes of H rows of W) and
    /// `labels` (N values in [0, num_classes), or empty for an unlabeled dataset).
    /// Throws error::shape_mismatch when the sizes disagree and error::invalid_value when a
    /// label is out of range; both messages start with `name`.
    dataset(std::vector<std::uint8_t> images, std::vector<std::int32_t> labels, std::size_t channels,
            std::size_t height, std::size_t width, std::size_t num_classes, std::string name = "dataset")
        : m_images(std::move(images)),
          m_labels(std::move(labels)),
          m_channels(channels),
          m_height(height),
          m_width(width),
          m_num_classes(num_classes),
          m_name(std::move(name)) {
        const std::size_t per = sample_size();
        if (per == 0)
            throw error::shape_mismatch(m_name + ": image size " + shape_str(image_shape()) +
                                        " has a zero dimension");
        if (m_images.size() % per != 0)
            throw error::shape_mismatch(m_name + ": " + std::to_string(m_images.size()) +
                                        " pixel bytes is not a multiple of the image size " +
                                        shape_str(image_shape()) + " = " + std::to_string(per));
        m_size = m_images.size() / per;
        if (!m_labels.empty() && m_labels.size() != m_size)
            throw error::shape_mismatch(m_name + ": " + std::to_string(m_size) + " images but " +
                                        std::to_string(m_labels.size()) + " labels");
        for (std::size_t i = 0; i < m_labels.size(); ++i)
            if (m_labels[i] < 0 || static_cast<std::size_t>(m_labels[i]) >= m_num_classes)
                throw error::invalid_value(m_name + ": label " + std::to_string(m_labels[i]) +
                                           " at index " + std::to_string(i) + " is out of range [0, " +
                                           std::to_string(m_num_classes) + ")");
    }

    /// Number of samples.
    std::size_t size() const { return m_size; }
    bool empty() const { return m_size == 0; }
    std::size_t channels() const { return m_channels; }
    std::size_t height() const { return m_height; }
    std::size_t width() const { return m_width; }
    std::size_t num_classes() const { return m_num_classes; }
    /// C*H*W, the bytes of one sample.
    std::size_t sample_size() const { return m_channels * m_height * m_width; }
    /// {C, H, W}
    shape_t image_shape() const { return {m_channels, m_height, m_width}; }
    bool has_labels() const { return !m_labels.empty() || m_size == 0; }
    /// Used in error messages, e.g. "fashion-mnist/train".
    const std::string& name() const { return m_name; }

    /// All pixels, [N, C, H, W] row-major.
    const std::vector<std::uint8_t>& images() const { return m_images; }
    /// All labels (empty for an unlabeled dataset).
    const std::vector<std::int32_t>& labels() const { return m_labels; }
    /// The C*H*W bytes of sample i (unchecked).
    const std::uint8_t* image(std::size_t i) const { return m_images.data() + i * sample_size(); }
    /// The label of sample i (unchecked; the dataset must have labels).
    std::int32_t label(std::size_t i) const { return m_labels[i]; }

    /// Samples [first, first + count). Throws error::invalid_value when the range is not
    /// inside the dataset.
    dataset subset(std::size_t first, std::size_t count) const {
        if (first > m_size || count > m_size - first)
            throw error::invalid_value(m_name + ": subset(" + std::to_string(first) + ", " +
                                       std::to_string(count) + ") is outside the " +
                                       std::to_string(m_size) + " samples");
        const std::size_t per = sample_size();
        const auto b = m_images.begin() + static_cast<std::ptrdiff_t>(first * per);
        std::vector<std::uint8_t> img(b, b + static_cast<std::ptrdiff_t>(count * per));
        std::vector<std::int32_t> lab;
        if (!m_labels.empty()) {
            const auto lb = m_labels.begin() + static_cast<std::ptrdiff_t>(first);
            lab.assign(lb, lb + static_cast<std::ptrdiff_t>(count));
        }
        return make(std::move(img), std::move(lab));
    }

    /// The samples at `indices`, in that order (repeats allowed). Throws error::invalid_value
    /// naming the first index that is out of range.
    dataset subset(const std::vector<std::size_t>& indices) const {
        const std::size_t per = sample_size();
        std::vector<std::uint8_t> img(indices.size() * per);
        std::vector<std::int32_t> lab;
        if (!m_labels.empty()) lab.resize(indices.size());
        for (std::size_t k = 0; k < indices.size(); ++k) {
            const std::size_t i = indices[k];
            if (i >= m_size)
                throw error::invalid_value(m_name + ": subset index " + std::to_string(i) +
                                           " (position " + std::to_string(k) + ") is out of range [0, " +
                                           std::to_string(m_size) + ")");
            std::copy(image(i), image(i) + per, img.begin() + static_cast<std::ptrdiff_t>(k * per));
            if (!m_labels.empty()) lab[k] = m_labels[i];
        }
        return make(std::move(img), std::move(lab));
    }

    /// The same images without labels (for label-free training on a labelled set).
    dataset without_labels() const { return make(m_images, {}); }

private:
    // Builds a dataset of the same geometry from parts already known to be valid.
    dataset make(std::vector<std::uint8_t> img, std::vector<std::int32_t> lab) const {
        dataset d;
        d.m_images = std::move(img);
        d.m_labels = std::move(lab);
        d.m_channels = m_channels;
        d.m_height = m_height;
        d.m_width = m_width;
        d.m_num_classes = m_num_classes;
        d.m_name = m_name;
        d.m_size = sample_size() ? d.m_images.size() / sample_size() : 0;
        return d;
    }

    std::vector<std::uint8_t> m_images;
    std::vector<std::int32_t> m_labels;
    std::size_t m_channels = 0, m_height = 0, m_width = 0, m_num_classes = 0;
    std::size_t m_size = 0;
    std::string m_name = "dataset";
};

}  // namespace sqakd::data
