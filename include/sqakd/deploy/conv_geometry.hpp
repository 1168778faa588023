// sqakd/deploy/conv_geometry.hpp - the shape of an integer convolution, checked once.
//
// Layouts of the integer path: activations NHWC (one code per byte in kernels, channels
// innermost so that a pixel's input channels are contiguous), weights [out][kh][kw][in/groups],
// int32 outputs NHWC. Zero padding is activation code 0 (every activation quantizer has zero
// point 0).
#pragma once

#include <cstddef>

#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy {

struct conv_geometry {
    std::size_t batch = 1, height = 0, width = 0, in_channels = 0, out_channels = 0;
    std::size_t kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, pad_h = 1, pad_w = 1, groups = 1;

    constexpr std::size_t out_h() const noexcept { return (height + 2 * pad_h - kernel_h) / stride_h + 1; }
    constexpr std::size_t out_w() const noexcept { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }
    constexpr std::size_t in_per_group() const noexcept { return in_channels / groups; }
    constexpr std::size_t out_per_group() const noexcept { return out_channels / groups; }
    /// The dot-product length of one output: kh * kw * in_channels / groups.
    constexpr std::size_t reduction() const noexcept { return kernel_h * kernel_w * in_per_group(); }
    constexpr std::size_t input_size() const noexcept { return batch * height * width * in_channels; }
    constexpr std::size_t weight_size() const noexcept { return out_channels * reduction(); }
    constexpr std::size_t output_size() const noexcept { return batch * out_h() * out_w() * out_channels; }

    /// ok, or bad_shape for zero sizes, channels not divisible by groups, or a kernel larger
    /// than the padded input.
    constexpr status check() const noexcept {
        if (!batch || !height || !width || !in_channels || !out_channels || !kernel_h || !kernel_w || !stride_h ||
            !stride_w || !groups)
            return status::bad_shape;
        if (in_channels % groups || out_channels % groups) return status::bad_shape;
        if (kernel_h > height + 2 * pad_h || kernel_w > width + 2 * pad_w) return status::bad_shape;
        return status::ok;
    }
};

}  // namespace sqakd::deploy
