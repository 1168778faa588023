// sqakd/core/error.hpp - the library's exception types.
//
// Every check that can fail on user input (shapes, files, values) throws one of these, with a
// message that names what was wrong: the layer or file, the expected and the actual value.
#pragma once

#include <stdexcept>
#include <string>

namespace sqakd::error {

/// A tensor had the wrong shape for a layer or an API. The message names the layer, the
/// expected and the actual shape.
struct shape_mismatch : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

/// A value is outside what the API accepts (NaN/Inf in data or weights, bad hyper-parameter).
struct invalid_value : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

/// A file could not be opened, read or written. The message names the file.
struct file_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A file was read but its content is wrong: bad magic, truncated, checksum mismatch, wrong
/// version, sizes that disagree. The message names the file and what is wrong.
struct corrupt_file : file_error {
    using file_error::file_error;
};

}  // namespace sqakd::error
