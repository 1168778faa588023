// Compile-only check (built with -fno-exceptions -fno-rtti, see tests/CMakeLists.txt): the deploy
// core builds with the standard library alone, as an embedded build includes it: no xtensor, no
// exceptions, no RTTI.
#include "sqakd/deploy/conv_geometry.hpp"
#include "sqakd/deploy/int_conv.hpp"
#include "sqakd/deploy/int_network.hpp"
#include "sqakd/deploy/model_file.hpp"
#include "sqakd/deploy/kernels/binary_layout.hpp"
#include "sqakd/deploy/kernels/generic/gemm_packed.hpp"
#include "sqakd/deploy/kernels/reference/conv2d.hpp"
#include "sqakd/deploy/kernels/reference/gemm.hpp"
#include "sqakd/deploy/packing.hpp"
#include "sqakd/deploy/requant.hpp"
#include "sqakd/deploy/status.hpp"
#include "sqakd/deploy/kernels/x86/avx2/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx2/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vpopcntdq/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vnni/gemm.hpp"
#include "sqakd/deploy/kernels/x86/sse41/gemm.hpp"
#include "sqakd/deploy/weight_form.hpp"

#if defined(XTENSOR_VERSION_MAJOR) || defined(XTL_VERSION_MAJOR) || defined(_OPENMP_H)
#error "the deploy headers must not include xtensor, xtl or OpenMP"
#endif

namespace sqakd_deploy_standalone {
// A fixed 1x4x4x2 -> 2-channel W2A2 convolution in static storage: no heap anywhere.
int run() {
    using namespace sqakd::deploy;
    static const std::uint8_t x[32] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2, 3, 3, 0, 0,
                                       0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2, 3, 3, 0, 0};
    static const std::uint8_t w[36] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 2,
                                       0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 2};
    static std::int32_t y[32];
    conv_geometry g;
    g.height = g.width = 4, g.in_channels = 2, g.out_channels = 2;
    return static_cast<int>(reference::conv2d(2, 2, g, x, w, weight_form::odd_symmetric(2), y));
}
}  // namespace sqakd_deploy_standalone
