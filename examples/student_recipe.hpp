// The student recipe of SQAKD.md §5 as one function, shared by sqakd_distill and the demo:
// a ResNet-20 teacher checkpoint, a quantized student derived from it (first conv, last FC and
// shortcuts FP), distilled label-free (sqakd), trained with labels (qat_ce) or with Hinton KD
// (kd) on Fashion-MNIST; resumable through run_dir.
//
// The compiled presets (quantizer x bits) are listed in for_each_preset(); run_student_preset()
// picks one by name at run time and fails with the list when the name is unknown.
#pragma once

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
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
};

/// One compiled preset: a name, a bit width, the weight and activation quantizer presets.
template <int Bits, class WQ, class AQ>
struct preset {
    static constexpr int bits = Bits;
    using weight = WQ;
    using act = AQ;
};

/// Calls f(family_name, preset{}) for every compiled preset. interval uses the EWGS estimator,
/// whose delta is a run-time value (delta 0, the default, is exactly the clipped STE).
template <class F>
void for_each_preset(F&& f) {
    using namespace sqakd::quant;
    f("interval", preset<1, interval_weight<1, ewgs>, interval_act<1, ewgs>>{});
    f("interval", preset<2, interval_weight<2, ewgs>, interval_act<2, ewgs>>{});
    f("interval", preset<4, interval_weight<4, ewgs>, interval_act<4, ewgs>>{});
    f("interval", preset<8, interval_weight<8, ewgs>, interval_act<8, ewgs>>{});
    f("lsq", preset<2, lsq_weight<2, ewgs>, lsq_act<2, ewgs>>{});
    f("lsq", preset<4, lsq_weight<4, ewgs>, lsq_act<4, ewgs>>{});
    f("lsq_pc", preset<2, lsq_weight_per_channel<2, ewgs>, lsq_act<2, ewgs>>{});
    f("lsq_pc", preset<4, lsq_weight_per_channel<4, ewgs>, lsq_act<4, ewgs>>{});
    f("pact_dorefa", preset<2, dorefa_weight<2, ewgs>, pact_act<2, ewgs>>{});
    f("pact_dorefa", preset<4, dorefa_weight<4, ewgs>, pact_act<4, ewgs>>{});
}

/// "interval W1A1, W2A2, ..." for help texts and errors.
inline std::string preset_list() {
    std::string s;
    for_each_preset([&](const char* name, auto p) {
        if (!s.empty()) s += ", ";
        s += std::string(name) + " W" + std::to_string(decltype(p)::bits) + "A" + std::to_string(decltype(p)::bits);
    });
    return s;
}

template <class WQ, class AQ>
using student_net = sqakd::nn::quantize_t<student_teacher_net, WQ, AQ>;

/// Runs one student job with the quantizers WQ, AQ (bits from s.bits must match).
template <class WQ, class AQ>
student_result run_student(const student_options& s) {
    using namespace sqakd;
    set_num_threads(s.threads);
    if (s.teacher.empty()) throw std::invalid_argument("run_student: no teacher checkpoint given");
    if (s.method != "sqakd" && s.method != "qat_ce" && s.method != "kd")
        throw std::invalid_argument("run_student: unknown method '" + s.method + "' (sqakd, qat_ce, kd)");
    auto train_ds = data::load_fashion_mnist(s.data_dir, data::split::train);
    auto test_ds = data::load_fashion_mnist(s.data_dir, data::split::test);
    if (s.train_subset) train_ds = train_ds.subset(0, std::min(s.train_subset, train_ds.size()));
    if (s.test_subset) test_ds = test_ds.subset(0, std::min(s.test_subset, test_ds.size()));
    data::loader_options tr;
    tr.batch_size = s.batch;
    tr.shuffle = true;
    tr.augment = true;
    tr.seed = s.seed;
    tr.normalize(data::fashion_mnist_stats());
    data::loader_options te = tr;
    te.shuffle = false;
    te.augment = false;
    data::loader train_loader(train_ds, tr);
    data::loader test_loader(test_ds, te);

    student_teacher_net teacher;
    io::load_checkpoint(s.teacher, teacher);
    student_net<WQ, AQ> student;
    nn::copy_from_teacher(student, teacher);
    nn::for_each_quantized(student, [&](auto& l) {
        l.weight_quant().estimator().delta = s.delta;
        l.act_quant().estimator().delta = s.delta;
    });

    student_result out;
    out.teacher_top1 = train::evaluate(teacher, test_loader).top1;
    nn::for_each_quantized(student, [&](auto& l) { out.quantized_weights += l.weight().size(); });
    out.fp_values = nn::num_params(student) - out.quantized_weights;

    train::distill_options o;
    o.epochs = s.epochs;
    o.lr_model = s.lr_model;
    o.weight_decay = s.weight_decay;
    o.lr_quant = s.lr_quant;
    o.run_dir = s.run_dir;
    o.progress = s.progress;
    o.max_batches = s.max_batches;
    o.stop_after = s.stop_after;
    o.ewgs_update_every = s.ewgs_update_every;
    o.ewgs_temperature = s.temperature;
    o.label = s.quantizer + " W" + std::to_string(WQ::bits) + "A" + std::to_string(AQ::bits) + " " + s.method;
    const std::string estimator = s.delta == 0 && s.ewgs_update_every == 0 ? "clipped_ste" : "ewgs";
    o.meta = {{"model", "resnet20"}, {"dataset", "fashion-mnist"}, {"method", s.method},
              {"quantizer", s.quantizer}, {"w_bits", std::to_string(WQ::bits)}, {"a_bits", std::to_string(AQ::bits)},
              {"estimator", estimator}, {"delta", std::to_string(s.delta)},
              {"ewgs_update_every", std::to_string(s.ewgs_update_every)}, {"temperature", std::to_string(s.temperature)},
              {"seed", std::to_string(s.seed)}, {"threads", std::to_string(s.threads)}, {"teacher", s.teacher},
              {"commit", s.commit}, {"command", s.command}};
    train::distill_result res;
    if (s.method == "sqakd")
        res = train::distill(teacher, student, distill::sqakd_kl{s.temperature}, train_loader, &test_loader, o);
    else if (s.method == "qat_ce")
        res = train::distill(teacher, student, distill::cross_entropy{}, train_loader, &test_loader, o);
    else
        res = train::distill(teacher, student, distill::hinton_kd{s.kd_gamma, s.kd_alpha, s.temperature}, train_loader,
                             &test_loader, o);

    out.epochs_done = res.start_epoch + res.epochs.size();
    out.complete = out.epochs_done >= s.epochs;
    out.per_epoch_top1 = read_epoch_top1(s.run_dir, s.epochs);
    // The trained student alone (no optimiser state): what evaluation and export load.
    if (out.complete && !s.run_dir.empty()) {
        io::checkpoint_extra fin;
        fin.meta = res.meta;
        io::save_checkpoint(s.run_dir + "/final.sqakd", student, fin);
    }
    for (const auto& r : res.epochs) {
        out.per_epoch_top1[r.epoch - 1] = r.test_top1;
        out.seconds += r.seconds;
    }
    if (!res.epochs.empty()) out.images_per_sec = res.epochs.back().images_per_sec;
    if (!out.complete) return out;
    out.top1 = out.per_epoch_top1.back();
    out.last3_top1 = last3_mean(out.per_epoch_top1);
    std::vector<std::string> checksums;
    for (std::size_t e = 1; e <= s.epochs; ++e) {
        const std::string* c = io::detail::meta_find(res.meta, "weights_checksum_epoch_" + std::to_string(e));
        checksums.push_back(c ? *c : "");
    }
    const std::string* commit = io::detail::meta_find(res.meta, "commit");
    out.record = {{"kind", "accuracy"}, {"model", "resnet20"}, {"dataset", "fashion-mnist"}, {"method", s.method},
                  {"quantizer", s.quantizer}, {"estimator", estimator}, {"delta", s.delta}, {"ewgs_update_every", s.ewgs_update_every},
                  {"w_bits", WQ::bits}, {"a_bits", AQ::bits}, {"epochs", s.epochs}, {"seed", s.seed},
                  {"top1", out.top1}, {"last3_top1", out.last3_top1}, {"per_epoch_top1", out.per_epoch_top1},
                  {"teacher", s.teacher}, {"teacher_top1", out.teacher_top1}, {"temperature", s.temperature},
                  {"labels_used", s.method != "sqakd"}, {"batch", s.batch}, {"threads", s.threads},
                  {"lr_model", s.lr_model}, {"lr_quant", s.lr_quant}, {"weights_checksum_per_epoch", checksums},
                  {"commit", commit ? *commit : s.commit}, {"command", s.command}};
    return out;
}

/// Runs the preset named s.quantizer at s.bits; throws std::invalid_argument listing the
/// compiled presets when there is none.
inline student_result run_student_preset(const student_options& s) {
    bool found = false;
    student_result r;
    for_each_preset([&](const char* name, auto p) {
        using P = decltype(p);
        if (found || s.quantizer != name || s.bits != P::bits) return;
        found = true;
        r = run_student<typename P::weight, typename P::act>(s);
    });
    if (!found)
        throw std::invalid_argument("no compiled preset '" + s.quantizer + "' at " + std::to_string(s.bits) +
                                    " bits; compiled: " + preset_list());
    return r;
}

}  // namespace sqakd_examples
