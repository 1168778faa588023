// sqakd/deploy/kernels/reference/conv2d.hpp - the scalar reference integer convolution (direct,
// the definition): for every output pixel and channel,
//
//   y = mul * sum k * a - offset * sum a     over the kh x kw x in/groups window of its group,
//
// with padded positions contributing code 0 (value 0). Layouts: see conv_geometry.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/conv_geometry.hpp"
#include "sqakd/deploy/kernels/reference/gemm.hpp"
#include "sqakd/deploy/packing.hpp"
#include "sqakd/deploy/status.hpp"
#include "sqakd/deploy/weight_form.hpp"

namespace sqakd::deploy::reference {

/// x: NHWC codes (g.input_size()), w: [out][kh][kw][in/groups] codes (g.weight_size()),
/// y: NHWC int32 (g.output_size()).
inline status conv2d(int wbits, int abits, const conv_geometry& g, const std::uint8_t* x, const std::uint8_t* w,
                     weight_form f, std::int32_t* y) noexcept {
    if (!valid_bits(wbits) || !valid_bits(abits)) return status::bad_bit_width;
    if (const status st = g.check(); st != status::ok) return st;
    if (g.reduction() > max_reduction(wbits, abits, f)) return status::bad_shape;
    const std::size_t oh = g.out_h(), ow = g.out_w(), cig = g.in_per_group(), cog = g.out_per_group();
    for (std::size_t n = 0; n < g.batch; ++n)
        for (std::size_t oy = 0; oy < oh; ++oy)
            for (std::size_t ox = 0; ox < ow; ++ox)
                for (std::size_t co = 0; co < g.out_channels; ++co) {
                    const std::size_t c0 = (co / cog) * cig;
                    std::int64_t d = 0, s = 0;
                    for (std::size_t ky = 0; ky < g.kernel_h; ++ky) {
                        // iy = oy*stride + ky - pad, outside [0, height) is padding (code 0)
                        const std::size_t iy = oy * g.stride_h + ky;
                        if (iy < g.pad_h || iy - g.pad_h >= g.height) continue;
                        for (std::size_t kx = 0; kx < g.kernel_w; ++kx) {
                            const std::size_t ix = ox * g.stride_w + kx;
                            if (ix < g.pad_w || ix - g.pad_w >= g.width) continue;
                            const std::uint8_t* xp =
                                x + ((n * g.height + (iy - g.pad_h)) * g.width + (ix - g.pad_w)) * g.in_channels + c0;
                            const std::uint8_t* wp = w + ((co * g.kernel_h + ky) * g.kernel_w + kx) * cig;
                            d += dot(xp, wp, cig);
                            s += sum(xp, cig);
                        }
                    }
                    y[((n * oh + oy) * ow + ox) * g.out_channels + co] =
                        static_cast<std::int32_t>(std::int64_t{f.mul} * d - std::int64_t{f.offset} * s);
                }
    return status::ok;
}

}  // namespace sqakd::deploy::reference
