// sqakd/deploy/status.hpp - error reporting of the deploy core: status codes, no exceptions.
//
// The deploy headers compile with the standard library and xsimd alone (embedded builds, no
// exceptions, no heap in the static path), so every check there returns a deploy::status.
// The io layer turns a status that is not ok into a sqakd::error exception with a sentence.
//
//   if (auto st = deploy::pack_codes(4, codes, n, out); st != deploy::status::ok)
//       std::puts(deploy::describe(st));
#pragma once

namespace sqakd::deploy {

enum class status : int {
    ok = 0,
    bad_bit_width,      ///< a bit width outside 1..8 (or one a kernel does not support)
    code_out_of_range,  ///< an integer code >= 2^bits
    bad_shape,          ///< sizes that disagree, zero sizes, or a reduction longer than the overflow bound
    buffer_too_small,   ///< an output or workspace buffer smaller than needed
    truncated,          ///< a model file ends early
    bad_magic,          ///< not a sqakd integer model file
    bad_version,        ///< a model file version this build does not read
    bad_checksum,       ///< a model file whose content does not match its checksum
    non_finite,         ///< NaN or Inf in a scale, bias or weight
    unsupported,        ///< a network the integer path cannot represent
};

/// A sentence for each status (static storage; never null).
constexpr const char* describe(status s) noexcept {
    switch (s) {
        case status::ok: return "ok";
        case status::bad_bit_width: return "unsupported bit width (the integer path takes 1 to 8 bits)";
        case status::code_out_of_range: return "an integer code does not fit its bit width";
        case status::bad_shape: return "sizes disagree, are zero, or exceed the int32 accumulation bound";
        case status::buffer_too_small: return "a buffer is smaller than the operation needs";
        case status::truncated: return "the model file is truncated";
        case status::bad_magic: return "not a sqakd integer model file (bad magic)";
        case status::bad_version: return "the model file has a version this build cannot read";
        case status::bad_checksum: return "the model file is corrupt (checksum mismatch)";
        case status::non_finite: return "a scale, bias or weight is NaN or infinite";
        case status::unsupported: return "the network has a layer the integer path cannot represent";
    }
    return "unknown status";
}

}  // namespace sqakd::deploy
