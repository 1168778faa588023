// tests/golden/golden_check.hpp - comparison against golden data and a generic case runner.
//
// ERROR MEASURE (the same as in scripts/golden/make_golden_layers.py), per tensor:
//
//     err(a, b) = max_i |a_i - b_i| / max_i |b_i|        (a = sqakd, b = golden)
//
// and a tensor passes when err <= rtol; an all-zero golden tensor must be matched exactly, a
// NaN anywhere fails, and shapes must be equal.
//
// Why norm-wise and not element-wise: every output here is a sum (a dot product of length
// 9..300, a batch-statistics reduction, a chain of such in the ResNet cases). The float32
// rounding error of a sum is bounded by ~K u sum|terms| (u = 2^-24), i.e. it scales with the
// magnitude of the tensor, not with that of the individual element: an element that is ~0
// after cancellation has a large element-wise relative error even in a correct
// implementation. Normalising by the tensor's largest value is scale invariant, needs no
// absolute tolerance, and still catches every structural bug (a wrong index, padding, a
// missing term, a biased instead of unbiased variance, a wrong momentum), which move some
// element by 1e-3 of the tensor's scale or far more.
//
// Golden values are the float64 computation on the float32 inputs, rounded to float32, so err
// measures sqakd's own float32 error only. Tolerances:
//   single layers and the basic block: rtol = 1e-5 (~170 ulp of the tensor's largest value; the
//     script keeps the block's ReLU inputs >= 1e-4 of their scale away from zero, so no float32
//     rounding can flip a mask there). PyTorch's own float32 scores at most 3.6e-7 on these cases; sqakd's GEMM/accumulation order
//     differs from PyTorch's, so 1e-5 leaves a wide margin for legitimate rounding
//     differences while rejecting any real discrepancy.
//   whole network (ResNet-20, train mode), see test_resnet_golden.cpp: in double, every tensor
//     at 1e-6; in float, values that are continuous functions of the inputs (logits, running
//     stats, FC and BatchNorm1d gradients) at rtol_network = 1e-4 (rounding amplified by 19
//     conv+BN layers; PyTorch float32 scores 4.1e-6), gradients below a ReLU at
//     rtol_network_kinked = 5e-2 (a float32 rounding can flip a ReLU mask; see there).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "golden_reader.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::golden {

inline constexpr double rtol_layer = 1e-5;
inline constexpr double rtol_network = 1e-4;
inline constexpr double rtol_network_kinked = 5e-2;

/// Directory of the golden files.
inline std::string data_path(const std::string& case_name) {
    return std::string(SQAKD_TEST_DATA_DIR) + "/golden/" + case_name + ".txt";
}

struct compare_result {
    double err = 0;           ///< max|a-b| / max|b| (inf on NaN, shape mismatch, or b == 0 and a != b)
    std::size_t worst = 0;    ///< flat index of the largest |a-b|
    double a = 0, b = 0;      ///< values at `worst`
    double scale = 0;         ///< max|b|
    bool shape_ok = true;
};

/// err(a, b); `a` may be a double tensor (the double-precision runs), `b` is golden float32.
template <class A>
compare_result compare(const tensor<A>& a, const tensor<float>& b) {
    compare_result r;
    if (a.dimension() != b.dimension() || !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin())) {
        r.shape_ok = false;
        r.err = std::numeric_limits<double>::infinity();
        return r;
    }
    double maxd = 0;
    bool nan = false;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double d = std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i]));
        r.scale = std::max(r.scale, std::abs(static_cast<double>(b.data()[i])));
        if (std::isnan(d)) {
            if (!nan) r.worst = i;
            nan = true;
        } else if (d > maxd && !nan) {
            maxd = d;
            r.worst = i;
        }
    }
    if (b.size()) {
        r.a = a.data()[r.worst];
        r.b = b.data()[r.worst];
    }
    if (nan)
        r.err = std::numeric_limits<double>::infinity();
    else if (r.scale == 0)
        r.err = maxd == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    else
        r.err = maxd / r.scale;
    return r;
}

/// "[i0, i1, ...]" of a flat row-major index.
inline std::string multi_index(const tensor<float>& t, std::size_t flat) {
    std::vector<std::size_t> idx(t.dimension());
    for (std::size_t k = t.dimension(); k-- > 0;) {
        idx[k] = flat % t.shape()[k];
        flat /= t.shape()[k];
    }
    return shape_str(idx);
}

/// Worst error of one case, over all its tensors.
struct case_summary {
    explicit case_summary(std::string case_name) : name(std::move(case_name)) {}
    case_summary(const case_summary&) = delete;
    case_summary& operator=(const case_summary&) = delete;

    std::string name;
    double worst = 0;
    std::string worst_tensor;
    int compared = 0;

    /// Prints the summary line when SQAKD_GOLDEN_VERBOSE is set.
    ~case_summary() {
        if (std::getenv("SQAKD_GOLDEN_VERBOSE"))
            std::printf("golden %-22s %2d tensors, worst err %.3e (%s)\n", name.c_str(), compared, worst,
                        worst_tensor.c_str());
    }
};

/// CHECKs err(actual, expected) <= rtol; the failure message names the case, the tensor, the
/// worst index and both values.
template <class A>
void check_tensor(case_summary& s, const std::string& tensor_name, const tensor<A>& actual,
                  const tensor<float>& expected, double rtol) {
    const compare_result r = compare(actual, expected);
    ++s.compared;
    if (s.worst_tensor.empty() || r.err > s.worst) {
        s.worst = r.err;
        s.worst_tensor = tensor_name;
    }
    if (!r.shape_ok) {
        CHECK_MESSAGE(r.shape_ok, s.name << ": " << tensor_name << ": sqakd shape " << shape_str(actual.shape())
                                         << " vs PyTorch " << shape_str(expected.shape()));
        return;
    }
    std::ostringstream os;
    os.precision(9);
    os << s.name << ": " << tensor_name << ": max|a-b|/max|b| = " << r.err << " > " << rtol << " at "
       << multi_index(expected, r.worst) << ": sqakd " << r.a << " vs PyTorch " << r.b << " (max|b| = " << r.scale
       << ")";
    CHECK_MESSAGE(r.err <= rtol, os.str());
}

/// Copies a golden tensor into a layer's parameter or buffer, checking the shape.
template <class T>
void assign(const std::string& what, tensor<T>& dst, const tensor<float>& src) {
    if (dst.dimension() != src.dimension() || !std::equal(dst.shape().begin(), dst.shape().end(), src.shape().begin()))
        throw error::shape_mismatch("golden: " + what + ": sqakd shape " + shape_str(dst.shape()) +
                                    " vs golden " + shape_str(src.shape()));
    for (std::size_t i = 0; i < src.size(); ++i) dst.data()[i] = static_cast<T>(src.data()[i]);
}

/// A golden tensor converted (exactly) to T.
template <class T>
tensor<T> converted(const tensor<float>& src) {
    tensor<T> t(shape_t(src.shape().begin(), src.shape().end()));
    assign("converted", t, src);
    return t;
}

/// Loads every parameter ("param.<name>") and buffer ("buffer.<name>") of `layer` from `g`
/// and zeroes the gradients.
template <class Layer>
void load_state(golden_file& g, Layer& layer) {
    layer.for_each_param([&](const std::string& name, tensor<float>& v, tensor<float>& grad, nn::param_kind) {
        assign("param." + name, v, g.take("param." + name));
        grad.fill(0);
    });
    layer.for_each_buffer([&](const std::string& name, tensor<float>& v) {
        assign("buffer." + name, v, g.take("buffer." + name));
    });
}

/// Runs one golden case on `layer`: loads the parameters and buffers, runs forward(x, m) and
/// backward(dy), compares y, dx, every parameter gradient and (in train mode) every buffer after
/// the update, and checks that the file holds nothing that was not compared.
template <class Layer>
void run_layer_case(const std::string& case_name, Layer& layer, nn::mode m, double rtol = rtol_layer) {
    golden_file g = golden_file::load(data_path(case_name));
    case_summary s{case_name};
    load_state(g, layer);
    const tensor<float>& x = g.take("x");
    const tensor<float>& dy = g.take("dy");
    check_tensor(s, "y", layer.forward(x, m), g.take("y"), rtol);
    check_tensor(s, "dx", layer.backward(dy, true), g.take("dx"), rtol);
    layer.for_each_param([&](const std::string& name, tensor<float>&, tensor<float>& grad, nn::param_kind) {
        check_tensor(s, "grad." + name, grad, g.take("grad." + name), rtol);
    });
    if (m == nn::mode::train) {
        layer.for_each_buffer([&](const std::string& name, tensor<float>& v) {
            check_tensor(s, "buffer_after." + name, v, g.take("buffer_after." + name), rtol);
        });
    }
    const auto left = g.unused();
    std::string names;
    for (const auto& n : left) names += " " + n;
    CHECK_MESSAGE(left.empty(), case_name << ": golden tensors not compared by the test:" << names);
}

}  // namespace sqakd::golden
