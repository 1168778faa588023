// Must NOT compile: cross-entropy reads labels, the data source has none.
// tests/compile_fail/check_compile_fail.cmake builds this and expects the static_assert's sentence.
#include "sqakd/data/loader.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/train/distill.hpp"

int main() {
    using namespace sqakd;
    using teacher_t = nn::models::resnet20<1, 10>;
    teacher_t teacher;
    nn::quantize_t<teacher_t, quant::interval_weight<2>, quant::interval_act<2>> student;
    data::dataset ds;
    data::unlabeled_loader images(ds);
    train::distill(teacher, student, distill::cross_entropy{}, images, static_cast<data::loader*>(nullptr),
                   train::distill_options{});
}
