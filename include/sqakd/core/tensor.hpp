// sqakd/core/tensor.hpp - tensor alias over xtensor, shape formatting and shape checks.
//
// Activations are NCHW (or NF for 2-D), row-major, contiguous. Layers read and write through
// data() in their hot loops; xtensor is the container, not the compute engine.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "sqakd/core/error.hpp"

namespace sqakd {

/// The tensor type of the training engine: dynamic rank, row-major, contiguous.
template <class T = float>
using tensor = xt::xarray<T, xt::layout_type::row_major>;

using shape_t = std::vector<std::size_t>;

/// "[2, 3, 28, 28]"
template <class Shape>
std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << '[';
    bool first = true;
    for (auto d : s) {
        if (!first) os << ", ";
        os << d;
        first = false;
    }
    os << ']';
    return os.str();
}

/// Resize `t` to `shape` unless it already has it (keeps the buffer when the shape matches).
template <class T>
void ensure_shape(tensor<T>& t, const shape_t& shape) {
    if (t.dimension() == shape.size() &&
        std::equal(shape.begin(), shape.end(), t.shape().begin()))
        return;
    t.resize(shape);
}

/// Throws error::shape_mismatch naming `who` when `x` does not have rank `rank`, or when a
/// non-zero entry of `dims` (given as {d0, d1, ...}, 0 = any) differs.
template <class T>
void check_shape(const char* who, const tensor<T>& x, std::initializer_list<std::size_t> dims) {
    bool ok = x.dimension() == dims.size();
    if (ok) {
        std::size_t i = 0;
        for (auto d : dims) {
            if (d != 0 && x.shape()[i] != d) ok = false;
            ++i;
        }
    }
    if (!ok) {
        std::ostringstream os;
        os << who << ": expected input of shape [";
        std::size_t i = 0;
        for (auto d : dims) {
            if (i++) os << ", ";
            if (d == 0)
                os << '*';
            else
                os << d;
        }
        os << "] (* = any), got " << shape_str(x.shape());
        throw error::shape_mismatch(os.str());
    }
}

/// Throws error::shape_mismatch unless a and b have the same shape.
template <class T, class U>
void check_same_shape(const char* who, const tensor<T>& a, const tensor<U>& b) {
    if (a.dimension() != b.dimension() ||
        !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()))
        throw error::shape_mismatch(std::string(who) + ": expected shape " + shape_str(a.shape()) +
                                    ", got " + shape_str(b.shape()));
}

}  // namespace sqakd
