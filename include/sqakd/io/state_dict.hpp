// sqakd/io/state_dict.hpp - load weights by name from other frameworks (PyTorch state dicts).
//
//   nn::models::resnet20<1, 10> model;
//   io::load_report r = io::load_safetensors_into(model, "resnet20.safetensors",
//                                                 io::resnet20_torch_names());
//   // or, in two steps:
//   io::tensor_map w = io::load_safetensors(path);
//   io::load_state_dict(model, w, io::resnet20_torch_names(), io::strictness::strict, path);
//
//   // export the other way (load in PyTorch with load_state_dict(..., strict=False), or add
//   // num_batches_tracked):
//   io::save_safetensors("out.safetensors", io::state_dict(model, io::resnet20_torch_names().inverse()));
//
// A name_map turns a source name into a sqakd name: first it removes the first matching prefix
// of `strip` (e.g. "module." from nn.DataParallel), then it replaces the first matching
// prefix of `rename`. Names that match no rule pass through unchanged, so files that already
// use sqakd's names ("0.weight", "3.branch.1.running_var", ...) load with any map.
//
// Tensors whose last name component is "num_batches_tracked" (PyTorch BatchNorm's step
// counter) are skipped. Layouts already agree with PyTorch: conv weights [Out, In, K, K],
// linear weights [Out, In], BatchNorm weight/bias/running_mean/running_var.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/io/model_state.hpp"
#include "sqakd/io/safetensors.hpp"

namespace sqakd::io {

/// Renames source tensor names to sqakd names by prefix (see the file comment).
struct name_map {
    /// Prefixes removed first; the first one that matches is removed, once.
    std::vector<std::string> strip;
    /// (from, to) prefix pairs; the first whose `from` is a prefix of the name wins.
    std::vector<std::pair<std::string, std::string>> rename;

    std::string operator()(const std::string& name) const {
        std::string s = name;
        for (const auto& p : strip)
            if (s.compare(0, p.size(), p) == 0) {
                s.erase(0, p.size());
                break;
            }
        for (const auto& [from, to] : rename)
            if (s.compare(0, from.size(), from) == 0) return to + s.substr(from.size());
        return s;
    }

    /// The map from sqakd names back to source names: each rename pair swapped; where several
    /// sources map to one target the first listed wins. `strip` is dropped.
    name_map inverse() const {
        name_map inv;
        for (const auto& [from, to] : rename) {
            bool seen = false;
            for (const auto& r : inv.rename) seen = seen || r.first == to;
            if (!seen) inv.rename.emplace_back(to, from);
        }
        return inv;
    }
};

/// The name map for the common PyTorch CIFAR ResNet-20 (scripts/torch_ref/models.py, the
/// akamaster/pytorch_resnet_cifar10 naming plus SQAKD's BatchNorm1d) onto
/// nn::models::resnet20:
///
///   PyTorch name prefix            sqakd prefix       layer
///   conv1.                         0.                 conv3x3 In->16
///   bn1.                           1.                 BatchNorm2d(16)
///   layer1.{0,1,2}.                3., 4., 5.         stage 1 blocks
///   layer2.{0,1,2}.                6., 7., 8.         stage 2 blocks
///   layer3.{0,1,2}.                9., 10., 11.       stage 3 blocks
///     within a block: conv1. -> branch.0., bn1. -> branch.1., conv2. -> branch.3.,
///                     bn2. -> branch.4., shortcut. -> shortcut. (option-B / projection
///                     shortcuts of nn::basic_block_proj; option A has no parameters)
///   bn2.                           13.                BatchNorm1d(64) after the pooling
///   linear.  or  fc.               14.                Linear(64, Classes)
///   module. (nn.DataParallel)      removed first
///
/// e.g. "layer2.0.bn2.running_var" -> "6.branch.4.running_var", "linear.bias" -> "14.bias".
inline name_map resnet20_torch_names() {
    name_map m;
    m.strip = {"module."};
    m.rename = {{"conv1.", "0."}, {"bn1.", "1."}};
    for (int s = 1; s <= 3; ++s)
        for (int b = 0; b < 3; ++b) {
            const std::string from = "layer" + std::to_string(s) + "." + std::to_string(b) + ".";
            const std::string to = std::to_string(3 * s + b) + ".";
            m.rename.emplace_back(from + "conv1.", to + "branch.0.");
            m.rename.emplace_back(from + "bn1.", to + "branch.1.");
            m.rename.emplace_back(from + "conv2.", to + "branch.3.");
            m.rename.emplace_back(from + "bn2.", to + "branch.4.");
            m.rename.emplace_back(from + "shortcut.", to + "shortcut.");
        }
    m.rename.emplace_back("bn2.", "13.");
    m.rename.emplace_back("linear.", "14.");
    m.rename.emplace_back("fc.", "14.");
    return m;
}

/// Whether names that do not line up are errors (strict) or only reported (lenient).
/// Mis-shaped tensors and NaN/Inf values are errors either way.
enum class strictness { strict, lenient };

namespace detail {
inline bool is_skipped_name(const std::string& name) {
    static const std::string tail = "num_batches_tracked";
    if (name.size() < tail.size() || name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
    return name.size() == tail.size() || name[name.size() - tail.size() - 1] == '.';
}
}  // namespace detail

/// Fills `model`'s parameters and buffers from `tensors`, whose names are translated by
/// `names`. `source` names the tensors' origin in messages (usually the file path).
///
/// Throws error::shape_mismatch listing every problem, each with the source name, the sqakd
/// name, the expected and the actual shape: a shape that differs; two source tensors that
/// map to one sqakd name; and, when strict, a model tensor with no source (missing) or a
/// source tensor the model does not have (unexpected). Throws error::invalid_value naming the
/// tensor for a NaN or Inf value. On error the model is unchanged. Returns what was loaded,
/// skipped (num_batches_tracked), missing and unexpected.
template <class Model>
load_report load_state_dict(Model& model, const tensor_map& tensors, const name_map& names = {},
                            strictness mode = strictness::strict, const std::string& source = "state dict") {
    std::map<std::string, std::pair<std::string, const tensor<float>*>> by_model_name;
    std::vector<std::pair<std::string, std::string>> source_names;
    std::vector<std::string> skipped, clashes;
    for (const auto& [name, t] : tensors) {
        if (detail::is_skipped_name(name)) {
            skipped.push_back(name);
            continue;
        }
        const std::string target = names(name);
        auto [it, inserted] = by_model_name.emplace(target, std::make_pair(name, &t));
        if (!inserted)
            clashes.push_back("'" + it->second.first + "' and '" + name + "' both map to '" + target + "'");
        source_names.emplace_back(target, name);
    }
    if (!clashes.empty()) {
        std::string msg = "load_state_dict: " + source + ": several tensors map to one model tensor:";
        for (const auto& c : clashes) msg += "\n  " + c;
        throw error::shape_mismatch(msg);
    }
    assign_options opt;
    opt.who = "load_state_dict";
    opt.source = source;
    opt.strict = mode == strictness::strict;
    auto lookup = [&](const std::string& model_name) -> const tensor<float>* {
        auto it = by_model_name.find(model_name);
        return it == by_model_name.end() ? nullptr : it->second.second;
    };
    load_report rep = assign_state(model, lookup, source_names, opt);
    rep.skipped = std::move(skipped);
    return rep;
}

/// load_safetensors(path) then load_state_dict(model, ..., names, mode, path).
template <class Model>
load_report load_safetensors_into(Model& model, const std::string& path, const name_map& names = {},
                                  strictness mode = strictness::strict) {
    return load_state_dict(model, load_safetensors(path), names, mode, "safetensors file '" + path + "'");
}

/// `model`'s parameters and buffers as float32 copies, under names translated by `names`
/// (use a map's inverse() to produce another framework's names).
template <class Model>
tensor_map state_dict(Model& model, const name_map& names = {}) {
    tensor_map out;
    for (auto& [name, t] : state_tensors(model)) {
        const std::string target = names(name);
        if (!out.emplace(target, std::move(t)).second)
            throw error::invalid_value("state_dict: two model tensors map to the name '" + target + "'");
    }
    return out;
}

}  // namespace sqakd::io
