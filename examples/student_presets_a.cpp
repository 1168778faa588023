// The first half of the compiled presets (run_student_at<0..4>) and the run-time dispatch.
// The presets are split over two translation units so that a 2-core build compiles them in
// parallel; student_presets_b.cpp has the rest.
#include <stdexcept>
#include <string>

#include "student_recipe_impl.hpp"

namespace sqakd_examples {

template student_result run_student_at<0>(const student_options&);
template student_result run_student_at<1>(const student_options&);
template student_result run_student_at<2>(const student_options&);
template student_result run_student_at<3>(const student_options&);
template student_result run_student_at<4>(const student_options&);

student_result run_student_preset(const student_options& s) {
    bool found = false;
    student_result r;
    for_each_preset([&](auto index, auto p) {
        if (found || s.quantizer != p.name() || s.bits != decltype(p)::bits) return;
        found = true;
        r = run_student_at<decltype(index)::value>(s);
    });
    if (!found)
        throw std::invalid_argument("no compiled preset '" + s.quantizer + "' at " + std::to_string(s.bits) +
                                    " bits; compiled: " + preset_list());
    return r;
}

}  // namespace sqakd_examples
