// The student recipe of SQAKD.md §5 as one function, shared by sqakd_distill and the demo:
// a ResNet-20 teacher checkpoint, a quantized student derived from it (first conv, last FC and
// shortcuts FP), distilled label-free (sqakd), trained with labels (qat_ce) or with Hinton KD
// (kd) on Fashion-MNIST; resumable through run_dir.
//
// The compiled presets (quantizer x bits) are listed once, in compiled_presets; run_student_preset()
// picks one by name at run time and fails with the list when the name is unknown. This header
// only declares the runners: they are compiled once, in the sqakd_example_students library
// (student_presets_a.cpp, student_presets_b.cpp), and linked into sqakd_distill and the demo.
#pragma once

#include <algorithm>
#include <dirent.h>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "sqakd/data.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/train/distill.hpp"

namespace sqakd_examples {

using student_teacher_net = sqakd::nn::models::resnet20<1, 10>;

struct student_options {
    std::string quantizer = "interval";  ///< a preset family, see for_each_preset()
    int bits = 4;                        ///< weights and activations
    std::string method = "sqakd";        ///< sqakd | qat_ce | kd
    std::uint64_t seed = 0;
    std::size_t epochs = 6, batch = 256, train_subset = 0, test_subset = 0, max_batches = 0, stop_after = 0;
    double temperature = 4, delta = 0, kd_gamma = 1, kd_alpha = 1;
    std::size_t ewgs_update_every = 0;  ///< > 0: EWGS deltas from the Hessian trace every N epochs
    double lr_model = 1e-3, weight_decay = 1e-4, lr_quant = 1e-5;
    int threads = 2;
    std::string teacher, run_dir, data_dir = sqakd::data::default_fashion_mnist_dir;
    bool progress = true;
    bool int_export = false;  ///< when complete: compile the integer network and measure it (the demo)
    std::string command, commit;
};

struct student_result {
    bool complete = false;
    std::size_t epochs_done = 0;
    std::vector<double> per_epoch_top1;
    double top1 = -1, last3_top1 = -1, teacher_top1 = -1, seconds = 0, images_per_sec = 0;
    std::size_t quantized_weights = 0;  ///< weights of the quantized layers (stored at b bits)
    std::size_t fp_values = 0;          ///< every other parameter (first conv, FC, BN, quantizer parameters)
    nlohmann::json record;
    // with int_export: the integer network (deploy::compile) against the student, on the test set
    double int_top1 = -1, int_agreement = -1, int_max_logit_diff = 0, int_ms_batch1 = 0;
    std::size_t int_bytes = 0;
};

/// One compiled preset: a family name, a bit width, the weight and activation quantizer presets.
/// interval uses the EWGS estimator everywhere: its delta is a run-time value (delta 0, the
/// default, is exactly the clipped STE).
template <const char* (*Name)(), int Bits, template <int, class> class W, template <int, class> class A>
struct preset {
    static const char* name() { return Name(); }
    static constexpr int bits = Bits;
    using weight = W<Bits, sqakd::quant::ewgs>;
    using act = A<Bits, sqakd::quant::ewgs>;
};
inline const char* interval_name() { return "interval"; }
inline const char* lsq_name() { return "lsq"; }
inline const char* lsq_pc_name() { return "lsq_pc"; }
inline const char* pact_dorefa_name() { return "pact_dorefa"; }

/// Every compiled preset, in one list: sqakd_distill, the demo and the committed-students test
/// use it. Each is compiled once, in examples/student_presets*.cpp (run_student_at<I>).
using compiled_presets = std::tuple<
    preset<interval_name, 1, sqakd::quant::interval_weight, sqakd::quant::interval_act>,
    preset<interval_name, 2, sqakd::quant::interval_weight, sqakd::quant::interval_act>,
    preset<interval_name, 4, sqakd::quant::interval_weight, sqakd::quant::interval_act>,
    preset<interval_name, 8, sqakd::quant::interval_weight, sqakd::quant::interval_act>,
    preset<lsq_name, 2, sqakd::quant::lsq_weight, sqakd::quant::lsq_act>,
    preset<lsq_name, 4, sqakd::quant::lsq_weight, sqakd::quant::lsq_act>,
    preset<lsq_pc_name, 2, sqakd::quant::lsq_weight_per_channel, sqakd::quant::lsq_act>,
    preset<lsq_pc_name, 4, sqakd::quant::lsq_weight_per_channel, sqakd::quant::lsq_act>,
    preset<pact_dorefa_name, 2, sqakd::quant::dorefa_weight, sqakd::quant::pact_act>,
    preset<pact_dorefa_name, 4, sqakd::quant::dorefa_weight, sqakd::quant::pact_act>>;
inline constexpr std::size_t num_compiled_presets = std::tuple_size<compiled_presets>::value;

namespace detail {
template <class F, std::size_t... I>
void for_each_preset(F&& f, std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, I>{}, std::tuple_element_t<I, compiled_presets>{}), ...);
}
}  // namespace detail

/// Calls f(index, preset{}) for every compiled preset; index is a std::integral_constant.
template <class F>
void for_each_preset(F&& f) {
    detail::for_each_preset(f, std::make_index_sequence<num_compiled_presets>{});
}

/// "interval W1A1, W2A2, ..." for help texts and errors.
inline std::string preset_list() {
    std::string s;
    for_each_preset([&](auto, auto p) {
        if (!s.empty()) s += ", ";
        s += std::string(p.name()) + " W" + std::to_string(decltype(p)::bits) + "A" + std::to_string(decltype(p)::bits);
    });
    return s;
}

template <class WQ, class AQ>
using student_net = sqakd::nn::quantize_t<student_teacher_net, WQ, AQ>;

/// Calls f(student*) (a null pointer of the student type) for the compiled preset (quantizer,
/// bits); returns false when there is none. For code that loads a committed student by its
/// checkpoint's meta (sqakd_int_eval, the committed-students test).
template <class F>
bool with_student_type(const std::string& quantizer, int bits, F&& f) {
    bool found = false;
    for_each_preset([&](auto, auto p) {
        using P = decltype(p);
        if (found || quantizer != p.name() || bits != P::bits) return;
        found = true;
        f(static_cast<student_net<typename P::weight, typename P::act>*>(nullptr));
    });
    return found;
}

/// The sub-folders of `dir` that hold a final.sqakd (finished student runs), sorted.
inline std::vector<std::string> finished_runs(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != ".." && sqakd::io::file_exists(dir + "/" + n + "/final.sqakd")) out.push_back(n);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// Runs one student job with the quantizers WQ, AQ (bits from s.bits must match). Defined in
/// student_recipe_impl.hpp; the compiled presets are instantiated in student_presets*.cpp.
template <class WQ, class AQ>
student_result run_student(const student_options& s);

/// run_student for compiled preset I (explicitly instantiated, one list in student_presets*.cpp).
template <std::size_t I>
student_result run_student_at(const student_options& s);

/// Runs the preset named s.quantizer at s.bits; throws std::invalid_argument listing the
/// compiled presets when there is none.
student_result run_student_preset(const student_options& s);

}  // namespace sqakd_examples
