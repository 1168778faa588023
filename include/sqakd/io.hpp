// sqakd/io.hpp - files: checkpoints, safetensors import/export, atomic writes.
//
//   io::save_checkpoint(path, model, extra);   io::load_into(model, io::read_checkpoint(path));
//   io::load_safetensors_into(model, "resnet20.safetensors", io::resnet20_torch_names());
//
// Only the standard library, xtensor and zlib are used (no JSON library: io/json.hpp parses
// the safetensors header).
#pragma once

#include "sqakd/io/checkpoint.hpp"
#include "sqakd/io/file.hpp"
#include "sqakd/io/json.hpp"
#include "sqakd/io/model_state.hpp"
#include "sqakd/io/safetensors.hpp"
#include "sqakd/io/state_dict.hpp"
