// sqakd/deploy/kernels/x86/cpu.hpp - which x86 kernel tiers this CPU (and its OS) can run.
//
// Kernels are compiled with function target attributes, so one binary holds every tier; the
// library picks the best one the CPU supports (x86::best_gemm) and the tests run every tier
// the CPU has, skipping the others with a message (XNNPACK's ISA checks).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SQAKD_DEPLOY_X86 1
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#define SQAKD_DEPLOY_AMX 1
#endif
#endif

namespace sqakd::deploy::x86 {

struct cpu_features {
    bool sse41 = false, avx2 = false, avx512bw = false, avx512vnni = false, avx512vpopcntdq = false;
    /// AMX tiles with int8 dot products, the OS saving them (XCR0 bits 17-18) and this process
    /// granted their state (Linux arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)).
    bool amx_int8 = false;
};

/// CPUID and XGETBV: an ISA counts only when the OS saves its registers.
inline cpu_features detect() noexcept {
    cpu_features f;
#ifdef SQAKD_DEPLOY_X86
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.sse41 = (c >> 19) & 1;
    const bool osxsave = (c >> 27) & 1;
    if (!osxsave) return f;
    unsigned xlo = 0, xhi = 0;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const bool ymm = (xlo & 0x6) == 0x6, zmm = (xlo & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = ymm && ((b >> 5) & 1);
    const bool avx512f = zmm && ((b >> 16) & 1);
    f.avx512bw = avx512f && ((b >> 30) & 1);
    f.avx512vnni = f.avx512bw && ((c >> 11) & 1);
    f.avx512vpopcntdq = avx512f && ((c >> 14) & 1);
#ifdef SQAKD_DEPLOY_AMX
    const bool tiles_saved = (xlo & 0x60000) == 0x60000;
    const bool amx = ((d >> 24) & 1) && ((d >> 25) & 1);  // AMX-TILE, AMX-INT8
    if (tiles_saved && amx && f.avx512vnni) {
        constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
        f.amx_int8 = syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
    }
#endif
#endif
    return f;
}

/// The features of this CPU, detected once.
inline const cpu_features& cpu() noexcept {
    static const cpu_features f = detect();
    return f;
}

}  // namespace sqakd::deploy::x86
