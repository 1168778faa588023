// sqakd/io/int_model.hpp - integer model files on disk (format: deploy/model_file.hpp).
//
//   io::save_int_network("w2a2.sqint", net);          // atomic: temp file + rename
//   deploy::int_network net = io::load_int_network("w2a2.sqint");
//
// The deploy core reports problems as status codes; here they become exceptions that name the
// file: error::file_error (missing, unreadable) and error::corrupt_file (truncated, bad magic,
// wrong version, checksum mismatch, inconsistent content).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/deploy/model_file.hpp"
#include "sqakd/io/file.hpp"

namespace sqakd::io {

inline void save_int_network(const std::string& path, const deploy::int_network& net) {
    std::vector<std::uint8_t> bytes;
    if (const auto st = deploy::serialize(net, bytes); st != deploy::status::ok)
        throw error::invalid_value("save_int_network: " + path + ": the network is not consistent: " +
                                   deploy::describe(st));
    write_file_atomic(path, bytes.data(), bytes.size());
}

inline deploy::int_network load_int_network(const std::string& path, deploy::isa tier = deploy::isa::best) {
    const std::string bytes = read_file(path);  // error::file_error naming the file when missing
    deploy::int_network net;
    if (const auto st = deploy::deserialize(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), net, tier);
        st != deploy::status::ok)
        throw error::corrupt_file(path + ": " + deploy::describe(st));
    return net;
}

}  // namespace sqakd::io
