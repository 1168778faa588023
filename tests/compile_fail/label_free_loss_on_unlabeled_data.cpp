// Must compile: the control case of label_loss_on_unlabeled_data.cpp (same code, label-free loss),
// so the compile-fail test cannot pass because of an unrelated error.
#include "sqakd/data/loader.hpp"
#include "sqakd/distill/kd.hpp"
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
    train::distill(teacher, student, distill::sqakd_kl{}, images, static_cast<data::loader*>(nullptr),
                   train::distill_options{});
}
