// The definition of run_student (student_recipe.hpp), included only by the translation units
// that instantiate the compiled presets (student_presets*.cpp): each preset's whole training
// stack is compiled once, not once per program.
#pragma once

#include "int_export.hpp"
#include "student_recipe.hpp"

namespace sqakd_examples {

/// Runs one student job with the quantizers WQ, AQ (bits from s.bits must match).
template <class WQ, class AQ>
student_result run_student(const student_options& s) {
    using namespace sqakd;
    set_num_threads(s.threads);
    if (s.teacher.empty()) throw std::invalid_argument("run_student: no teacher checkpoint given");
    if (s.method != "sqakd" && s.method != "qat_ce" && s.method != "kd")
        throw std::invalid_argument("run_student: unknown method '" + s.method + "' (sqakd, qat_ce, kd)");
    fmnist_loaders d(s.data_dir, s.batch, s.seed, s.train_subset, s.test_subset);
    data::loader &train_loader = d.train, &test_loader = d.test;

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
    fill_epoch_results(out, s.run_dir, s.epochs, res.epochs);
    if (!out.complete) return out;
    // The trained student alone (no optimiser state): what evaluation and export load.
    if (!s.run_dir.empty()) {
        io::checkpoint_extra fin;
        fin.meta = res.meta;
        io::save_checkpoint(s.run_dir + "/final.sqakd", student, fin);
    }
    if (s.int_export) {
        const auto net = deploy::compile(student, {1, 28, 28});
        const auto a = compare_int(student, net, test_loader);
        out.int_top1 = a.top1_int();
        out.int_agreement = a.agreement();
        out.int_max_logit_diff = a.max_logit_diff;
        out.int_bytes = net.model_bytes();
        out.int_ms_batch1 = int_latency_ms(net, test_loader, 200);
    }
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

template <std::size_t I>
student_result run_student_at(const student_options& s) {
    using P = std::tuple_element_t<I, compiled_presets>;
    return run_student<typename P::weight, typename P::act>(s);
}

}  // namespace sqakd_examples
