// The second half of the compiled presets (run_student_at<5..9>); see student_presets_a.cpp.
#include "student_recipe_impl.hpp"

namespace sqakd_examples {

static_assert(num_compiled_presets == 10,
              "compiled_presets changed: update the explicit instantiations in student_presets_a.cpp and _b.cpp");

template student_result run_student_at<5>(const student_options&);
template student_result run_student_at<6>(const student_options&);
template student_result run_student_at<7>(const student_options&);
template student_result run_student_at<8>(const student_options&);
template student_result run_student_at<9>(const student_options&);

}  // namespace sqakd_examples
