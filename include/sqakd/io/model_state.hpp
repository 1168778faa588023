// sqakd/io/model_state.hpp - a model's named state (parameters + buffers) as plain tensors.
//
// Any type with the layer contract's for_each_param / for_each_buffer (nn/layer.hpp) is a
// "model" here: a single layer, an nn::sequential, a residual block. Its state is the list of
// its parameters, then its buffers (BN running statistics), in visiting order, under the
// names the layers give them ("0.weight", "3.branch.1.running_mean", ...).
//
//   io::named_tensors s = io::state_tensors(model);     // copies, as float32
//   std::string h = io::weights_checksum(model);        // 16 hex digits, FNV-1a-64
//   io::load_report r = io::assign_state(model, lookup, opts);   // used by load_into and
//                                                                 // load_state_dict
//
// Files store float32. A model with another scalar type (double, for gradient checks) is
// converted on the way out and on the way in.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"

namespace sqakd::io {

/// Ordered (name, tensor) pairs.
using named_tensors = std::vector<std::pair<std::string, tensor<float>>>;
/// Tensors by name (what a safetensors file holds).
using tensor_map = std::map<std::string, tensor<float>>;

/// What a load did. `loaded`, `missing`: model names; `unexpected`, `skipped`: source names
/// (skipped = deliberately ignored, e.g. PyTorch's num_batches_tracked).
struct load_report {
    std::vector<std::string> loaded, missing, unexpected, skipped;

    /// "loaded 65 tensors, skipped 20, missing 0, unexpected 0".
    std::string summary() const {
        return "loaded " + std::to_string(loaded.size()) + " tensors, skipped " + std::to_string(skipped.size()) +
               ", missing " + std::to_string(missing.size()) + ", unexpected " + std::to_string(unexpected.size());
    }
};

namespace detail {

template <class Model>
using model_scalar_t = typename std::remove_reference_t<Model>::scalar_type;

/// A reference to one tensor of a model's state.
template <class T>
struct state_ref {
    std::string name;
    tensor<T>* value;
    bool is_buffer;
};

template <class Model>
std::vector<state_ref<model_scalar_t<Model>>> state_refs(Model& model) {
    using T = model_scalar_t<Model>;
    std::vector<state_ref<T>> refs;
    model.for_each_param([&](const std::string& name, tensor<T>& v, tensor<T>&, auto) {
        refs.push_back({name, &v, false});
    });
    model.for_each_buffer([&](const std::string& name, tensor<T>& v) { refs.push_back({name, &v, true}); });
    return refs;
}

template <class A, class B>
bool same_shape(const A& a, const B& b) {
    return a.dimension() == b.dimension() && std::equal(a.shape().begin(), a.shape().end(), b.shape().begin());
}

/// Index of the first non-finite value of `t`, or -1.
template <class T>
long first_non_finite(const tensor<T>& t) {
    const T* p = t.data();
    for (std::size_t i = 0; i < t.size(); ++i)
        if (!std::isfinite(p[i])) return static_cast<long>(i);
    return -1;
}

inline void append_list(std::ostringstream& os, const std::vector<std::string>& items, std::size_t& shown) {
    constexpr std::size_t max_shown = 24;
    for (const auto& s : items) {
        if (shown == max_shown) {
            os << "\n  ...";
            ++shown;
        }
        if (shown > max_shown) return;
        os << "\n  " << s;
        ++shown;
    }
}

}  // namespace detail

/// How assign_state treats names that do not line up.
struct assign_options {
    /// Where the tensors come from, for messages ("checkpoint 'run/ckpt.bin'").
    std::string source = "state dict";
    /// The calling function, for messages ("load_into").
    std::string who = "load";
    /// When true, model tensors without a source tensor and source tensors the model does not
    /// have are errors; when false they are only reported (missing ones keep their values).
    bool strict = true;
};

/// Copies tensors into `model`'s parameters and buffers. `lookup(model_name)` returns a pointer
/// to the source tensor for that name, or nullptr. `source_names` lists every source tensor
/// under its *model* name (after any renaming) paired with its original name, so that source
/// tensors the model does not use can be reported.
///
/// Everything is checked before anything is written, so on error the model is unchanged:
///  - a shape that differs, a missing or (strict) an unexpected tensor -> error::shape_mismatch
///    listing each problem: the tensor's name, the expected and the actual shape;
///  - a NaN or Inf value -> error::invalid_value naming the tensor and the index.
template <class Model, class Lookup>
load_report assign_state(Model& model, Lookup&& lookup,
                         const std::vector<std::pair<std::string, std::string>>& source_names,
                         const assign_options& opt) {
    using T = detail::model_scalar_t<Model>;
    auto refs = detail::state_refs(model);
    load_report rep;
    std::vector<std::string> problems;
    std::vector<const tensor<float>*> src(refs.size(), nullptr);
    std::vector<std::string> model_names;
    model_names.reserve(refs.size());
    for (std::size_t i = 0; i < refs.size(); ++i) {
        const auto& r = refs[i];
        model_names.push_back(r.name);
        const tensor<float>* s = lookup(r.name);
        if (!s) {
            rep.missing.push_back(r.name);
            if (opt.strict)
                problems.push_back("missing tensor '" + r.name + "' (the model expects shape " +
                                   shape_str(r.value->shape()) + ")");
            continue;
        }
        if (!detail::same_shape(*r.value, *s)) {
            std::string shown = "'" + r.name + "'";
            for (const auto& [model_name, original] : source_names)
                if (model_name == r.name && original != r.name) shown += " (source '" + original + "')";
            problems.push_back("tensor " + shown + ": expected shape " + shape_str(r.value->shape()) + ", got " +
                               shape_str(s->shape()));
            continue;
        }
        src[i] = s;
    }
    std::sort(model_names.begin(), model_names.end());
    for (const auto& [model_name, original] : source_names) {
        if (std::binary_search(model_names.begin(), model_names.end(), model_name)) continue;
        const std::string shown =
            model_name == original ? "'" + original + "'" : "'" + original + "' (as '" + model_name + "')";
        rep.unexpected.push_back(original);
        if (opt.strict) problems.push_back("unexpected tensor " + shown + ": the model has no tensor of that name");
    }
    if (!problems.empty()) {
        std::ostringstream os;
        os << opt.who << ": " << opt.source << " does not fit the model (" << problems.size() << " problem"
           << (problems.size() == 1 ? "" : "s") << "):";
        std::size_t shown = 0;
        detail::append_list(os, problems, shown);
        throw error::shape_mismatch(os.str());
    }
    for (std::size_t i = 0; i < refs.size(); ++i) {
        if (!src[i]) continue;
        const long bad = detail::first_non_finite(*src[i]);
        if (bad >= 0) {
            std::ostringstream os;
            os << opt.who << ": " << opt.source << ": tensor '" << refs[i].name << "' has a non-finite value ("
               << src[i]->data()[bad] << " at flat index " << bad << "); refusing to load it";
            throw error::invalid_value(os.str());
        }
    }
    for (std::size_t i = 0; i < refs.size(); ++i) {
        if (!src[i]) continue;
        const float* s = src[i]->data();
        T* d = refs[i].value->data();
        for (std::size_t k = 0; k < src[i]->size(); ++k) d[k] = static_cast<T>(s[k]);
        rep.loaded.push_back(refs[i].name);
    }
    return rep;
}

/// Copies of `model`'s parameters then buffers, as float32, under the model's names.
template <class Model>
named_tensors state_tensors(Model& model) {
    named_tensors out;
    for (const auto& r : detail::state_refs(model)) {
        tensor<float> t(shape_t(r.value->shape().begin(), r.value->shape().end()));
        std::transform(r.value->data(), r.value->data() + r.value->size(), t.data(),
                       [](auto v) { return static_cast<float>(v); });
        out.emplace_back(r.name, std::move(t));
    }
    return out;
}

/// A fingerprint of `model`'s weights: FNV-1a-64 over the little-endian float32 bytes of every
/// parameter then every buffer, in visiting order, as 16 lowercase hex digits. Equal weights
/// give equal strings on every platform; the trainer stores one per epoch in checkpoints
/// ("weights_checksum_epoch_<k>") so a resumed run can prove it continues the same weights.
/// Names and shapes are not hashed (the checkpoint stores and checks those separately).
template <class Model>
std::string weights_checksum(Model& model) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& r : detail::state_refs(model)) {
        const auto* p = r.value->data();
        for (std::size_t i = 0; i < r.value->size(); ++i) {
            const float f = static_cast<float>(p[i]);
            std::uint32_t u;
            std::memcpy(&u, &f, 4);
            for (int b = 0; b < 4; ++b) {
                h ^= (u >> (8 * b)) & 0xFFu;
                h *= 0x100000001b3ull;
            }
        }
    }
    static const char* hex = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, h >>= 4) s[static_cast<std::size_t>(i)] = hex[h & 0xF];
    return s;
}

}  // namespace sqakd::io
