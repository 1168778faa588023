// sqakd/nn/quantize.hpp - the student type derived from the teacher type, and what walks it.
//
//   nn::quantize_t<Teacher, WeightQ, ActQ>   the student: Teacher's type list with every conv2d
//                                            and linear replaced by nn::quantized<..., WeightQ,
//                                            ActQ>, except (SQAKD.md §4) the first layer with
//                                            weights (conv or linear) and the last linear of the
//                                            top-level sequential, and every residual shortcut,
//                                            which stay FP
//   nn::copy_from_teacher(student, teacher)  the student's weights, biases, BN parameters and
//                                            buffers from the teacher, by name; every teacher
//                                            tensor must be used and every non-quantizer student
//                                            tensor filled (else error::shape_mismatch naming it)
//   nn::request_quant_init(student)          the next train-mode forward initialises every
//                                            quantizer from the input its layer really gets
//                                            (forward order, earlier layers already quantized)
//   nn::visit_layers(model, f)               f(layer) for every layer, pre-order, into
//                                            sequentials and residual blocks
//   nn::for_each_quantized(model, f)         f(layer) for every nn::quantized layer
//
// Example:
//   using teacher_t = nn::models::resnet20<1, 10>;
//   using student_t = nn::quantize_t<teacher_t, quant::interval_weight<2>, quant::interval_act<2>>;
//   student_t student;
//   nn::copy_from_teacher(student, teacher);
//   nn::request_quant_init(student);     // done by train::distill on a fresh start
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sqakd/core/error.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/nn/quantized.hpp"
#include "sqakd/nn/residual.hpp"
#include "sqakd/nn/sequential.hpp"

namespace sqakd::nn {

// ---- the type transform ----

template <class L, class WQ, class AQ>
struct quantize_layer {
    using type = L;  // layers without weights stay as they are
};
template <class L, class WQ, class AQ>
using quantize_layer_t = typename quantize_layer<L, WQ, AQ>::type;

template <int In, int Out, int K, int S, int P, int G, bool B, class T, class WQ, class AQ>
struct quantize_layer<conv2d<In, Out, K, S, P, G, B, T>, WQ, AQ> {
    using type = quantized<conv2d<In, Out, K, S, P, G, B, T>, WQ, AQ>;
};
template <int In, int Out, bool B, class T, class WQ, class AQ>
struct quantize_layer<linear<In, Out, B, T>, WQ, AQ> {
    using type = quantized<linear<In, Out, B, T>, WQ, AQ>;
};
template <class... Ls, class WQ, class AQ>
struct quantize_layer<sequential<Ls...>, WQ, AQ> {
    using type = sequential<quantize_layer_t<Ls, WQ, AQ>...>;
};
/// Shortcuts stay FP (SQAKD.md §4): only the branch is quantized.
template <class Branch, class Shortcut, class WQ, class AQ>
struct quantize_layer<residual<Branch, Shortcut>, WQ, AQ> {
    using type = residual<quantize_layer_t<Branch, WQ, AQ>, Shortcut>;
};

namespace detail {
template <class L>
struct is_conv : std::false_type {};
template <int In, int Out, int K, int S, int P, int G, bool B, class T>
struct is_conv<conv2d<In, Out, K, S, P, G, B, T>> : std::true_type {};
template <class L>
struct is_linear : std::false_type {};
template <int In, int Out, bool B, class T>
struct is_linear<linear<In, Out, B, T>> : std::true_type {};

template <class... Ls>
constexpr std::size_t first_weight_layer_index() {
    constexpr bool c[] = {(is_conv<Ls>::value || is_linear<Ls>::value)...};
    for (std::size_t i = 0; i < sizeof...(Ls); ++i)
        if (c[i]) return i;
    return sizeof...(Ls);
}
template <class... Ls>
constexpr std::size_t last_linear_index() {
    constexpr bool c[] = {is_linear<Ls>::value...};
    for (std::size_t i = sizeof...(Ls); i-- > 0;)
        if (c[i]) return i;
    return sizeof...(Ls);
}

template <class Seq, class WQ, class AQ, class Idx>
struct quantize_top;
template <class... Ls, class WQ, class AQ, std::size_t... I>
struct quantize_top<sequential<Ls...>, WQ, AQ, std::index_sequence<I...>> {
    static constexpr std::size_t keep_first = first_weight_layer_index<Ls...>();
    static constexpr std::size_t keep_last = last_linear_index<Ls...>();
    using type = sequential<std::conditional_t<(I == keep_first || I == keep_last), Ls, quantize_layer_t<Ls, WQ, AQ>>...>;
};
}  // namespace detail

template <class Teacher, class WQ, class AQ>
struct quantize {
    static_assert(sizeof(Teacher) == 0, "quantize_t: the teacher must be an nn::sequential network.");
};
template <class... Ls, class WQ, class AQ>
struct quantize<sequential<Ls...>, WQ, AQ> {
    using type = typename detail::quantize_top<sequential<Ls...>, WQ, AQ, std::index_sequence_for<Ls...>>::type;
};

/// The student type of a teacher type (see the top of this file).
template <class Teacher, class WeightQ, class ActQ>
using quantize_t = typename quantize<Teacher, WeightQ, ActQ>::type;

// ---- walking a network ----

namespace detail {
template <class L>
struct is_residual : std::false_type {};
template <class B, class S>
struct is_residual<residual<B, S>> : std::true_type {};
template <class L>
struct is_sequential : std::false_type {};
template <class... Ls>
struct is_sequential<sequential<Ls...>> : std::true_type {};
template <class L, class = void>
struct is_quantized : std::false_type {};
template <class L>
struct is_quantized<L, std::enable_if_t<L::is_quantized_layer>> : std::true_type {};
}  // namespace detail

/// Calls f(layer) for `model` and every layer inside it, pre-order.
template <class L, class F>
void visit_layers(L& layer, F&& f) {
    f(layer);
    if constexpr (detail::is_sequential<L>::value) {
        layer.each([&](auto& child, std::size_t) { visit_layers(child, f); });
    } else if constexpr (detail::is_residual<L>::value) {
        visit_layers(layer.branch(), f);
        visit_layers(layer.shortcut(), f);
    }
}

/// Calls f(layer) for every nn::quantized layer of `model`, in forward order.
template <class Model, class F>
void for_each_quantized(Model& model, F&& f) {
    visit_layers(model, [&](auto& l) {
        if constexpr (detail::is_quantized<std::decay_t<decltype(l)>>::value) f(l);
    });
}

/// Number of nn::quantized layers in `model`.
template <class Model>
std::size_t count_quantized(Model& model) {
    std::size_t n = 0;
    for_each_quantized(model, [&](auto&) { ++n; });
    return n;
}

/// The next forward in train mode initialises every quantizer from its layer's real input.
template <class Model>
void request_quant_init(Model& model) {
    for_each_quantized(model, [](auto& l) { l.request_quant_init(); });
}

/// Copies the teacher's parameters and buffers into the student by name (see the top).
template <class Student, class Teacher>
void copy_from_teacher(Student& student, Teacher& teacher) {
    using T = typename Student::scalar_type;
    std::map<std::string, tensor<T>*> src;
    std::map<std::string, bool> used;
    teacher.for_each_param([&](const std::string& n, tensor<T>& v, tensor<T>&, param_kind) { src[n] = &v; used[n] = false; });
    teacher.for_each_buffer([&](const std::string& n, tensor<T>& v) { src[n] = &v; used[n] = false; });
    auto take = [&](const std::string& n, tensor<T>& dst) {
        auto it = src.find(n);
        if (it == src.end())
            throw error::shape_mismatch("copy_from_teacher: the teacher has no tensor '" + n +
                                        "' (are the two networks the same architecture?)");
        check_same_shape(("copy_from_teacher: '" + n + "'").c_str(), dst, *it->second);
        dst = *it->second;
        used[n] = true;
    };
    student.for_each_param([&](const std::string& n, tensor<T>& v, tensor<T>&, param_kind k) {
        if (k != param_kind::quant) take(n, v);
    });
    student.for_each_buffer([&](const std::string& n, tensor<T>& v) { take(n, v); });
    for (const auto& u : used)
        if (!u.second)
            throw error::shape_mismatch("copy_from_teacher: the student has no tensor '" + u.first +
                                        "' of the teacher (are the two networks the same architecture?)");
}

}  // namespace sqakd::nn
