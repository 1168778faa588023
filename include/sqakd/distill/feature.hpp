// sqakd/distill/feature.hpp - feature-level distillation: attention transfer (Zagoruyko &
// Komodakis, ICLR 2017) on top of the SQAKD KL loss.
//
//   distill::attention_transfer{beta}        the feature term alone, on pairs of feature maps
//   distill::sqakd_kl_at{T, beta, taps}      L = L_SQAKD(T) + attention transfer at `taps`
//                                            (indices of the top-level layers whose outputs are
//                                            compared; for ResNet-20 {5, 8, 11}, the three
//                                            stage outputs). Label-free.
//
// Attention map of a feature map F [B, C, H, W]: a_b = mean_c F[b, c]^2, flattened to H*W and
// L2-normalised per sample, q_b = a_b / max(||a_b||, 1e-12) (torch.nn.functional.normalize).
// For each pair (student s, teacher t):  L_AT = beta/2 * mean_{b,p} (q_s[b,p] - q_t[b,p])^2,
// summed over pairs (the reference code's at_loss with beta = 1000). Gradient:
//   dL/dq_s = beta (q_s - q_t) / (B H W);  dL/da = (g - q (q . g)) / ||a||;  dL/dF = 2 F dL/da / C.
// Student and teacher maps must have the same [B, *, H, W] (channels may differ).
//
// train::distill recognises losses with `needs_features`: it reads the taps' outputs after
// both forward passes and adds the feature gradients into the student's backward pass
// (nn::sequential::output_of / set_extra_grad).
//
// Example:
//   distill::sqakd_kl_at loss{4.0, 1000.0, {5, 8, 11}};
//   train::distill(teacher, student, loss, images, &test, options);
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "sqakd/distill/kd.hpp"

namespace sqakd::distill {

struct attention_transfer {
    static constexpr const char* name = "attention_transfer";
    double beta = 1000.0;

    /// Adds beta/2 mean (q_s - q_t)^2 for one pair; writes dLoss/dF_s into dfs (resized).
    template <class T>
    double operator()(const tensor<T>& fs, const tensor<T>& ft, tensor<T>& dfs) const {
        check_shape("attention_transfer (student features)", fs, {0, 0, 0, 0});
        check_shape("attention_transfer (teacher features)", ft, {0, 0, 0, 0});
        const std::size_t B = fs.shape()[0], Cs = fs.shape()[1], Ct = ft.shape()[1], P = fs.shape()[2] * fs.shape()[3];
        if (ft.shape()[0] != B || ft.shape()[2] * ft.shape()[3] != P || ft.shape()[2] != fs.shape()[2])
            throw error::shape_mismatch("attention_transfer: student features " + shape_str(fs.shape()) +
                                        " and teacher features " + shape_str(ft.shape()) +
                                        " differ in batch or spatial size");
        ensure_shape(dfs, shape_t(fs.shape().begin(), fs.shape().end()));
        std::vector<double> as(P), at(P), g(P);
        double total = 0;
        const double scale = beta / static_cast<double>(B * P);
        for (std::size_t b = 0; b < B; ++b) {
            attention(fs.data() + b * Cs * P, Cs, P, as);
            attention(ft.data() + b * Ct * P, Ct, P, at);
            const double ns = std::max(norm(as), 1e-12), nt = std::max(norm(at), 1e-12);
            double qg = 0;
            for (std::size_t p = 0; p < P; ++p) {
                const double qs = as[p] / ns, qt = at[p] / nt, d = qs - qt;
                total += 0.5 * scale * d * d;
                g[p] = scale * d;
                qg += qs * g[p];
            }
            // dL/da = (g - q (q . g)) / ||a||  (the normalisation's Jacobian; eps branch ignored)
            for (std::size_t p = 0; p < P; ++p) g[p] = (g[p] - as[p] / ns * qg) / ns;
            const T* f = fs.data() + b * Cs * P;
            T* d = dfs.data() + b * Cs * P;
            for (std::size_t c = 0; c < Cs; ++c)
                for (std::size_t p = 0; p < P; ++p)
                    d[c * P + p] = static_cast<T>(2.0 * static_cast<double>(f[c * P + p]) * g[p] / static_cast<double>(Cs));
        }
        return total;
    }

private:
    template <class T>
    static void attention(const T* f, std::size_t C, std::size_t P, std::vector<double>& a) {
        std::fill(a.begin(), a.end(), 0.0);
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t p = 0; p < P; ++p) a[p] += static_cast<double>(f[c * P + p]) * static_cast<double>(f[c * P + p]);
        for (auto& v : a) v /= static_cast<double>(C);
    }
    static double norm(const std::vector<double>& a) {
        double s = 0;
        for (double v : a) s += v * v;
        return std::sqrt(s);
    }
};

/// SQAKD's KL plus attention transfer at the given taps (label-free).
struct sqakd_kl_at {
    static constexpr bool needs_labels = false;
    static constexpr bool needs_teacher = true;
    static constexpr bool needs_features = true;
    static constexpr const char* name = "sqakd_kl_at";
    double temperature = 4.0;
    double beta = 1000.0;
    std::vector<std::size_t> taps = {5, 8, 11};

    /// fs[i], ft[i]: the taps' outputs; writes dLoss/dzs and dLoss/dfs[i] into dfs[i].
    template <class T>
    double operator()(const tensor<T>& zs, const tensor<T>& zt, const std::vector<const tensor<T>*>& fs,
                      const std::vector<const tensor<T>*>& ft, tensor<T>& dzs, std::vector<tensor<T>>& dfs) const {
        if (fs.size() != taps.size() || ft.size() != taps.size())
            throw error::shape_mismatch("sqakd_kl_at: expected " + std::to_string(taps.size()) + " feature maps per network");
        double l = sqakd_kl{temperature}(zs, zt, dzs);
        dfs.resize(taps.size());
        const attention_transfer at{beta};
        for (std::size_t i = 0; i < taps.size(); ++i) {
            if (!fs[i] || !ft[i]) throw error::shape_mismatch("sqakd_kl_at: tap " + std::to_string(taps[i]) + " has no output yet");
            l += at(*fs[i], *ft[i], dfs[i]);
        }
        return l;
    }
};

template <class L, class = void>
struct loss_needs_features : std::false_type {};
template <class L>
struct loss_needs_features<L, std::void_t<decltype(L::needs_features)>> : std::bool_constant<bool(L::needs_features)> {};

}  // namespace sqakd::distill
