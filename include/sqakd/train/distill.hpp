// sqakd/train/distill.hpp - quantization-aware distillation of a student from a frozen teacher
// (SQAKD.md §2, §5), label-free with distill::sqakd_kl.
//
//   auto res = train::distill(teacher, student, distill::sqakd_kl{4.0}, train_data, &test_loader, o);
//
// The recipe (SQAKD.md §5): two Adam optimisers, betas (0.9, 0.999), eps 1e-8 -
//   model parameters (conv/FC weights and biases, BN affine): lr o.lr_model (1e-3), L2 weight
//   decay o.weight_decay (1e-4) added to the gradient;
//   quantizer parameters (l, u, s, alpha, output scale): lr o.lr_quant (1e-5), weight decay
//   o.quant_weight_decay (0);
// both with the cosine schedule lr0 (1 + cos(pi e / E)) / 2, held for epoch e. Per batch: zero
// grads, teacher forward in eval mode (BN running statistics; the teacher is never updated),
// student forward in train mode on the same augmented batch, loss, student backward, model
// step, quantizer step. After each epoch the student is evaluated on `test` (labelled, may be
// null) in eval mode.
//
// Labels: a loss that does not declare needs_labels never receives them; when such a loss is
// given a labelled loader, distill reads the images only (through a data::unlabeled_loader
// over the same dataset and options). A loss that needs labels with an unlabeled data source
// does not compile.
//
// Quantizer initialisation: on a fresh start (no checkpoint to resume) with
// o.init_quantizers, the first training forward initialises every quantizer from the input its
// layer gets (SQAKD.md §3) - that forward is the first training step, as in the reference code.
//
// EWGS: with o.ewgs_update_every = N > 0 the deltas of the quant::ewgs quantizers are set from
// the Hessian trace every N epochs (see distill_options); the current deltas of all quantizers
// are stored in every checkpoint ("ewgs_delta_w_<i>", "ewgs_delta_a_<i>", forward order) and
// restored on resume, so a resumed run continues with the same deltas.
//
// Files in run_dir, as train::fit: metrics.jsonl (one line per epoch), last.sqakd and
// epoch_<k>.sqakd (student parameters including the quantizers', BN buffers, both optimisers'
// state as "optim_model." / "optim_quant." extras, metadata with "epoch",
// "weights_checksum_epoch_<k>", "teacher_checksum", "test_top1"). A run that finds last.sqakd
// resumes after its epoch and ends bit-identical to an uninterrupted run (fixed seed and
// thread count); resuming with a different teacher is refused.
#pragma once

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/data/loader.hpp"
#include "sqakd/distill/feature.hpp"
#include "sqakd/distill/kd.hpp"
#include "sqakd/io/checkpoint.hpp"
#include "sqakd/io/model_state.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/optim/adam.hpp"
#include "sqakd/optim/param_group.hpp"
#include "sqakd/optim/schedule.hpp"
#include "sqakd/quant/ewgs_update.hpp"
#include "sqakd/train/evaluate.hpp"
#include "sqakd/train/fit.hpp"
#include "sqakd/train/metrics.hpp"
#include "sqakd/train/progress.hpp"

namespace sqakd::train {

struct distill_options {
    std::size_t epochs = 6;
    double lr_model = 1e-3;          ///< Adam lr of weights, biases, BN affine
    double weight_decay = 1e-4;      ///< L2 added to their gradients
    double lr_quant = 1e-5;          ///< Adam lr of the quantizer parameters
    double quant_weight_decay = 0;   ///< e.g. PACT's L2 on alpha
    bool init_quantizers = true;     ///< fresh start: the first forward initialises the quantizers
    /// > 0: every N epochs (at the first batch of epochs 0, N, 2N, ...; after the quantizer
    /// initialisation on a fresh start) set the delta of every quant::ewgs quantizer from the
    /// Hessian trace (quant::ewgs_hessian_update) on that batch, with the label-free KL loss at
    /// ewgs_temperature against the teacher's logits. 0: deltas stay as given.
    std::size_t ewgs_update_every = 0;
    double ewgs_temperature = 4.0;
    quant::ewgs_update_options ewgs;
    std::string run_dir;             ///< checkpoints + metrics.jsonl; empty: neither
    bool resume = true;
    bool keep_every_epoch = true;
    bool progress = true;
    std::size_t max_batches = 0;     ///< per epoch; 0 = all
    std::size_t stop_after = 0;      ///< stop after this many epochs of this call (0 = to the end)
    std::string label = "student";
    io::meta_list meta;              ///< recorded in every checkpoint (seed, commit, command, ...)
};

struct distill_epoch {
    std::size_t epoch = 0;  ///< 1-based: epochs completed
    double lr_model = 0, lr_quant = 0, train_loss = 0, teacher_agreement = 0, test_top1 = -1, test_loss = -1,
           seconds = 0, images_per_sec = 0;
    std::string weights_checksum;
};

struct distill_result {
    std::vector<distill_epoch> epochs;  ///< the epochs this call trained
    std::size_t start_epoch = 0;
    io::meta_list meta;
};

namespace detail {
template <class Student>
bool quant_init_pending(Student& s) {
    bool p = false;
    nn::for_each_quantized(s, [&](auto& l) { p = p || l.quant_init_pending(); });
    return p;
}
}  // namespace detail

template <class Teacher, class Student, class Loss, class Data, class TestLoader = data::loader>
distill_result distill(Teacher& teacher, Student& student, const Loss& loss, Data& train_data, TestLoader* test,
                       const distill_options& o) {
    constexpr bool needs_labels = distill::loss_needs_labels<Loss>::value;
    constexpr bool needs_teacher = distill::loss_needs_teacher<Loss>::value;
    constexpr bool needs_features = distill::loss_needs_features<Loss>::value;
    static_assert(!needs_features || needs_teacher, "distill: a feature loss compares with the teacher's features.");
    static_assert(!needs_labels || data::has_labels_v<Data>,
                  "distill: this loss reads labels (e.g. cross_entropy or hinton_kd), but the training data is "
                  "unlabeled; use distill::sqakd_kl, or give a labelled data::loader.");
    using T = typename Student::scalar_type;
    static_assert(std::is_same_v<T, typename Teacher::scalar_type>,
                  "distill: the teacher and the student must use the same scalar type.");

    // The images-only view when the loss does not read labels.
    using source_t = std::conditional_t<needs_labels, Data&, data::unlabeled_loader>;
    auto make_source = [&]() -> source_t {
        if constexpr (needs_labels)
            return train_data;
        else if constexpr (data::has_labels_v<Data>)
            return data::unlabeled_loader(train_data);
        else
            return train_data;
    };
    source_t source = make_source();

    auto wparams = optim::collect_params(student, optim::model_params{});
    auto qparams = optim::collect_params(student, optim::quant_params{});
    optim::adam<T> opt_model({{wparams, o.lr_model, o.weight_decay}});
    optim::adam<T> opt_quant({{qparams, o.lr_quant, o.quant_weight_decay}});
    const optim::cosine_schedule sched_model{o.lr_model, o.epochs}, sched_quant{o.lr_quant, o.epochs};

    distill_result res;
    const bool files = !o.run_dir.empty();
    const std::string last = o.run_dir + "/last.sqakd";
    io::meta_list meta = o.meta;
    std::string teacher_sum;
    if constexpr (needs_teacher) teacher_sum = io::weights_checksum(teacher);
    io::detail::meta_set(meta, "teacher_checksum", teacher_sum);
    if (files) io::make_dirs(o.run_dir);
    bool resumed = false;
    if (files && o.resume && io::file_exists(last)) {
        io::checkpoint ck = io::read_checkpoint(last);
        const std::string* ts = io::detail::meta_find(ck.meta, "teacher_checksum");
        if (ts && *ts != teacher_sum)
            throw error::invalid_value("distill: " + last + " was trained from a different teacher (checksum " + *ts +
                                       ", this teacher " + teacher_sum + "); use a fresh run_dir");
        io::load_into(student, ck);
        detail::get_optimizer_state(opt_model, ck, "optim_model.", last);
        detail::get_optimizer_state(opt_quant, ck, "optim_quant.", last);
        res.start_epoch = static_cast<std::size_t>(std::stoull(ck.get("epoch")));
        for (const auto& kv : ck.meta)
            if (kv.first.rfind("weights_checksum_epoch_", 0) == 0) io::detail::meta_set(meta, kv.first, kv.second);
        std::size_t qi = 0;
        nn::for_each_quantized(student, [&](auto& l) {
            const std::string* w = io::detail::meta_find(ck.meta, "ewgs_delta_w_" + std::to_string(qi));
            const std::string* a = io::detail::meta_find(ck.meta, "ewgs_delta_a_" + std::to_string(qi));
            if (w) l.weight_quant().estimator().delta = std::stod(*w);
            if (a) l.act_quant().estimator().delta = std::stod(*a);
            ++qi;
        });
        resumed = true;
        if (o.progress)
            std::fprintf(stderr, "%s: resuming from %s after epoch %zu\n", o.label.c_str(), last.c_str(), res.start_epoch);
    }
    if (!resumed && o.init_quantizers) nn::request_quant_init(student);

    metrics_log log;
    if (files) log = metrics_log(o.run_dir + "/metrics.jsonl");

    tensor<T> x, dlogits;
    std::vector<std::int32_t> y;
    std::vector<tensor<T>> dfeat;
    std::vector<const tensor<T>*> fs, ft;
    std::size_t trained = 0;
    for (std::size_t e = res.start_epoch; e < o.epochs; ++e) {
        if (o.stop_after && trained >= o.stop_after) break;
        const double lrm = sched_model(e), lrq = sched_quant(e);
        opt_model.set_lr(0, lrm);
        opt_quant.set_lr(0, lrq);
        source.set_epoch(e);
        const std::size_t nb = o.max_batches ? std::min(o.max_batches, source.num_batches()) : source.num_batches();
        progress bar(o.label + " epoch " + std::to_string(e + 1) + "/" + std::to_string(o.epochs), nb, "img", stderr,
                     o.progress);
        double loss_sum = 0;
        std::size_t seen = 0, agree = 0;
        bool ewgs_due = o.ewgs_update_every > 0 && e % o.ewgs_update_every == 0;
        for (std::size_t b = 0; b < nb; ++b) {
            if constexpr (needs_labels)
                source.batch(b, x, y);
            else
                source.batch(b, x);
            const std::size_t bs = x.shape()[0];
            if (ewgs_due && !detail::quant_init_pending(student)) {
                const tensor<T> zt_u = teacher.forward(x, nn::mode::eval);
                const auto ur = quant::ewgs_hessian_update(student, distill::sqakd_kl{o.ewgs_temperature}, x, zt_u, o.ewgs);
                ewgs_due = false;
                if (files) {
                    std::vector<metric> fields{{"phase", "ewgs_update"}, {"epoch", static_cast<long long>(e)},
                                               {"probes", static_cast<long long>(ur.probes)}};
                    for (std::size_t i = 0; i < ur.weight_delta.size(); ++i) {
                        fields.push_back({"delta_w_" + std::to_string(i), ur.weight_delta[i]});
                        fields.push_back({"delta_a_" + std::to_string(i), ur.act_delta[i]});
                    }
                    log.write(fields);
                }
            }
            nn::zero_grad(student);
            const tensor<T>* zt = nullptr;
            if constexpr (needs_teacher) zt = &teacher.forward(x, nn::mode::eval);
            const auto& zs = student.forward(x, nn::mode::train);
            double l;
            if constexpr (needs_features) {
                fs.clear();
                ft.clear();
                for (std::size_t tap : loss.taps) {
                    fs.push_back(student.output_of(tap));
                    ft.push_back(teacher.output_of(tap));
                }
                l = loss(zs, *zt, fs, ft, dlogits, dfeat);
                for (std::size_t i = 0; i < loss.taps.size(); ++i) student.set_extra_grad(loss.taps[i], &dfeat[i]);
            } else if constexpr (needs_labels && needs_teacher)
                l = loss(zs, *zt, y, dlogits);
            else if constexpr (needs_labels)
                l = loss(zs, y, dlogits);
            else
                l = loss(zs, *zt, dlogits);
            if (!std::isfinite(l))
                throw error::invalid_value("distill: the loss is " + std::to_string(l) + " at epoch " +
                                           std::to_string(e + 1) + ", batch " + std::to_string(b) +
                                           " (diverged; lower the learning rates)");
            if constexpr (needs_teacher) {
                const auto ps = argmax_rows(zs), pt = argmax_rows(*zt);
                for (std::size_t i = 0; i < ps.size(); ++i) agree += ps[i] == pt[i];
            }
            student.backward(dlogits, false);
            if constexpr (needs_features) student.clear_extra_grads();
            opt_model.step();
            opt_quant.step();
            loss_sum += l * static_cast<double>(bs);
            seen += bs;
            bar.advance(1, bs, {{"loss", loss_sum / static_cast<double>(seen)}});
        }
        bar.finish();
        distill_epoch r;
        r.epoch = e + 1;
        r.lr_model = lrm;
        r.lr_quant = lrq;
        r.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
        r.teacher_agreement = needs_teacher && seen ? 100.0 * static_cast<double>(agree) / static_cast<double>(seen) : -1;
        r.seconds = bar.elapsed_seconds();
        r.images_per_sec = r.seconds > 0 ? static_cast<double>(seen) / r.seconds : 0;
        if (test) {
            const auto ev = evaluate(student, *test);
            r.test_top1 = ev.top1;
            r.test_loss = ev.loss;
        }
        r.weights_checksum = io::weights_checksum(student);
        ++trained;
        if (o.progress)
            std::fprintf(stderr,
                         "%s epoch %zu/%zu: loss %.4f teacher agreement %.2f%% test top-1 %.2f%% (%.0f img/s)\n",
                         o.label.c_str(), r.epoch, o.epochs, r.train_loss, r.teacher_agreement, r.test_top1,
                         r.images_per_sec);
        if (files) {
            io::detail::meta_set(meta, "epoch", std::to_string(r.epoch));
            io::detail::meta_set(meta, "epochs", std::to_string(o.epochs));
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2f", r.test_top1);
            io::detail::meta_set(meta, "test_top1", buf);
            io::detail::meta_set(meta, "weights_checksum_epoch_" + std::to_string(r.epoch), r.weights_checksum);
            std::size_t qi = 0;
            nn::for_each_quantized(student, [&](auto& l) {
                char d[40];
                std::snprintf(d, sizeof d, "%.17g", l.weight_quant().estimator().delta);
                io::detail::meta_set(meta, "ewgs_delta_w_" + std::to_string(qi), d);
                std::snprintf(d, sizeof d, "%.17g", l.act_quant().estimator().delta);
                io::detail::meta_set(meta, "ewgs_delta_a_" + std::to_string(qi), d);
                ++qi;
            });
            io::checkpoint_extra extra;
            extra.meta = meta;
            detail::put_optimizer_state(opt_model, extra, "optim_model.");
            detail::put_optimizer_state(opt_quant, extra, "optim_quant.");
            if (o.keep_every_epoch)
                io::save_checkpoint(o.run_dir + "/epoch_" + std::to_string(r.epoch) + ".sqakd", student, extra);
            io::save_checkpoint(last, student, extra);
            log.write({{"phase", "epoch"}, {"label", o.label}, {"epoch", static_cast<long long>(r.epoch)},
                       {"epochs", static_cast<long long>(o.epochs)}, {"lr_model", r.lr_model}, {"lr_quant", r.lr_quant},
                       {"train_loss", r.train_loss}, {"teacher_agreement", r.teacher_agreement},
                       {"test_top1", r.test_top1}, {"test_loss", r.test_loss}, {"seconds", r.seconds},
                       {"images_per_sec", r.images_per_sec}, {"weights_checksum", r.weights_checksum}});
        }
        res.epochs.push_back(r);
    }
    res.meta = meta;
    return res;
}

}  // namespace sqakd::train
