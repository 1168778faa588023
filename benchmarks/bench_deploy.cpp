// Integer deployment benchmarks (issue 4), Google Benchmark:
//   BM_conv/<isa>/W<w>A<a>/<layer>   one integer convolution of ResNet-20 (batch 1, im2col
//                                    included, one thread), counter GOPS = 2*M*N*K per second;
//                                    <isa> best: the tier deploy::isa::best picks (its label)
//   BM_resnet20_int/W<w>A<a>/<batch> the whole integer network (deploy::compile of a student
//                                    with random weights: speed does not depend on them);
//                                    batch 1 on one thread (latency), batch 64 on --threads
//                                    (throughput, run_parallel), counter images/s
//   BM_resnet20_fp32/<batch>         the FP32 teacher's eval forward (training code path,
//                                    OpenMP threads), for comparison
//   BM_onednn_conv/<layer>           oneDNN's int8 convolution (u8 x s8 -> s32, NHWC source,
//                                    format_tag::any weights reordered outside the timing) on
//                                    the same shapes, when built with oneDNN (Debian
//                                    libdnnl-dev); its implementation name is a label
// Flags: --threads=N (default 2) besides Google Benchmark's own.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sqakd/core/parallel.hpp"
#include "sqakd/deploy/compile.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/nn/quantize.hpp"

#include "bench_common.hpp"

#ifdef SQAKD_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace sqakd;

namespace {
int g_threads = 2;
using teacher_t = nn::models::resnet20<1, 10>;

struct layer_shape {
    const char* name;
    std::size_t h, cin, cout, stride;
};
// the distinct quantized conv shapes of ResNet-20 on 28x28 inputs
const layer_shape layers[] = {{"s1_16x16_28", 28, 16, 16, 1}, {"s2_16x32_28s2", 28, 16, 32, 2},
                              {"s2_32x32_14", 14, 32, 32, 1}, {"s3_32x64_14s2", 14, 32, 64, 2},
                              {"s3_64x64_7", 7, 64, 64, 1}};

void bm_conv(benchmark::State& st, deploy::isa tier, int wb, int ab, layer_shape L) {
    if (!deploy::isa_available(tier, wb == 1 && ab == 1)) {
        st.SkipWithError("this CPU lacks the tier");
        return;
    }
    deploy::conv_geometry g;
    g.height = g.width = L.h, g.in_channels = L.cin, g.out_channels = L.cout, g.stride_h = g.stride_w = L.stride;
    std::mt19937 r(1);
    std::vector<std::uint8_t> w(g.weight_size()), x(g.input_size());
    for (auto& v : w) v = static_cast<std::uint8_t>(r() % (1u << wb));
    for (auto& v : x) v = static_cast<std::uint8_t>(r() % (1u << ab));
    deploy::int_conv c;
    if (deploy::int_conv::make(wb, ab, g, w.data(), deploy::weight_form::odd_symmetric(wb), tier, c) != deploy::status::ok) {
        st.SkipWithError("int_conv::make failed");
        return;
    }
    std::vector<std::int32_t> y(g.output_size());
    std::vector<unsigned char> ws(c.workspace_bytes());
    for (auto _ : st) {
        (void)c.run(1, g.height, g.width, x.data(), y.data(), ws.data());
        benchmark::DoNotOptimize(y.data());
    }
    const double ops = 2.0 * static_cast<double>(g.out_h() * g.out_w()) * static_cast<double>(g.out_channels) *
                       static_cast<double>(g.reduction());
    st.counters["GOPS"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.SetLabel(deploy::isa_name(c.tier()));  // what `best` resolved to
}

template <int W, int A>
deploy::int_network random_student_network() {
    using student_t = nn::quantize_t<teacher_t, quant::interval_weight<W>, quant::interval_act<A>>;
    auto s = std::make_unique<student_t>();
    rng g(7);
    teacher_t t;
    t.init(g);
    nn::copy_from_teacher(*s, t);
    tensor<float> x(shape_t{16, 1, 28, 28});
    std::mt19937 r(3);
    std::normal_distribution<float> n(0, 1);
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = n(r);
    nn::request_quant_init(*s);
    (void)s->forward(x, nn::mode::train);
    return deploy::compile(*s, {1, 28, 28});
}

template <int W, int A>
void bm_int_net(benchmark::State& st) {
    static const deploy::int_network net = random_student_network<W, A>();
    const std::size_t batch = static_cast<std::size_t>(st.range(0));
    std::vector<float> x(batch * 28 * 28), logits(batch * 10);
    std::mt19937 r(5);
    std::normal_distribution<float> n(0, 1);
    for (auto& v : x) v = n(r);
    std::vector<deploy::int_network::workspace> ws;
    const unsigned threads = batch == 1 ? 1u : static_cast<unsigned>(g_threads);
    for (auto _ : st) {
        (void)net.run_parallel(x.data(), batch, logits.data(), ws, threads);
        benchmark::DoNotOptimize(logits.data());
    }
    st.counters["images_per_s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
    st.counters["threads"] = threads;
}

void bm_fp32(benchmark::State& st) {
    static teacher_t* t = [] {
        auto* p = new teacher_t;
        rng g(7);
        p->init(g);
        return p;
    }();
    const std::size_t batch = static_cast<std::size_t>(st.range(0));
    set_num_threads(batch == 1 ? 1 : g_threads);
    tensor<float> x(shape_t{batch, 1, 28, 28});
    std::mt19937 r(5);
    std::normal_distribution<float> n(0, 1);
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = n(r);
    for (auto _ : st) benchmark::DoNotOptimize(t->forward(x, nn::mode::eval).data());
    st.counters["images_per_s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
    st.counters["threads"] = batch == 1 ? 1 : g_threads;
}

#ifdef SQAKD_HAVE_DNNL
void bm_onednn_conv(benchmark::State& st, layer_shape L) {
    using namespace dnnl;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const memory::dim N = 1, IC = static_cast<memory::dim>(L.cin), OC = static_cast<memory::dim>(L.cout),
                      H = static_cast<memory::dim>(L.h), S = static_cast<memory::dim>(L.stride);
    const memory::dim OH = (H + 2 - 3) / S + 1;
    memory::desc src_md({N, IC, H, H}, dt::u8, tag::nhwc), dst_md({N, OC, OH, OH}, dt::s32, tag::nhwc);
    memory::desc wei_any({OC, IC, 3, 3}, dt::s8, tag::any);
    convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, src_md, wei_any, dst_md,
                                {S, S}, {1, 1}, {1, 1});
    convolution_forward::primitive_desc pd(d, eng);
    const std::string impl = pd.impl_info_str();
    memory src(src_md, eng), dst(dst_md, eng);
    memory wei_user({{OC, IC, 3, 3}, dt::s8, tag::oihw}, eng), wei(pd.weights_desc(), eng);
    std::mt19937 r(1);
    auto* sp = static_cast<std::uint8_t*>(src.get_data_handle());
    for (std::size_t i = 0; i < src_md.get_size(); ++i) sp[i] = static_cast<std::uint8_t>(r() % 16);
    auto* wp = static_cast<std::int8_t*>(wei_user.get_data_handle());
    for (std::size_t i = 0; i < wei_user.get_desc().get_size(); ++i) wp[i] = static_cast<std::int8_t>(r() % 15) - 7;
    reorder(wei_user, wei).execute(strm, wei_user, wei);  // outside the timing
    strm.wait();
    convolution_forward conv(pd);
    for (auto _ : st) {
        conv.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
        strm.wait();
    }
    const double ops = 2.0 * static_cast<double>(OH * OH) * static_cast<double>(OC) * static_cast<double>(IC * 9);
    st.counters["GOPS"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.SetLabel(impl);
}
#endif

void register_all() {
    const std::pair<int, int> pairs[] = {{1, 1}, {2, 2}, {4, 4}, {4, 8}, {8, 8}};
    for (const deploy::isa t : {deploy::isa::generic, deploy::isa::sse41, deploy::isa::avx2, deploy::isa::avx512,
                                deploy::isa::amx, deploy::isa::best})
        for (const auto& p : pairs)
            for (const auto& L : layers) {
                const std::string name = std::string("BM_conv/") + deploy::isa_name(t) + "/W" + std::to_string(p.first) +
                                         "A" + std::to_string(p.second) + "/" + L.name;
                benchmark::RegisterBenchmark(name.c_str(), bm_conv, t, p.first, p.second, L)->Unit(benchmark::kMicrosecond);
            }
    benchmark::RegisterBenchmark("BM_resnet20_int/W1A1", bm_int_net<1, 1>)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_resnet20_int/W2A2", bm_int_net<2, 2>)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_resnet20_int/W4A4", bm_int_net<4, 4>)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_resnet20_int/W4A8", bm_int_net<4, 8>)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_resnet20_int/W8A8", bm_int_net<8, 8>)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_resnet20_fp32", bm_fp32)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);
#ifdef SQAKD_HAVE_DNNL
    for (const auto& L : layers)
        benchmark::RegisterBenchmark((std::string("BM_onednn_conv/") + L.name).c_str(), bm_onednn_conv, L)
            ->Unit(benchmark::kMicrosecond);
#endif
}
}  // namespace

int main(int argc, char** argv) {
    auto ours = [](const char* a) { return sqakd_bench::take_flag("sqakd_bench_deploy", a, "--threads", g_threads); };
    return sqakd_bench::run(argc, argv, ours, [] {
        g_threads = std::max(g_threads, 1);
        sqakd_bench::context("sqakd_threads", std::to_string(g_threads));
        register_all();
    });
}
