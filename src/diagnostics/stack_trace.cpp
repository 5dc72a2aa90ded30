// diagnostics/stack_trace.cpp — goro::stack (Go's runtime.Stack of the
// calling goroutine): a header naming the goroutine, then one entry per
// frame, innermost first, then where the goroutine was created.
//
// Frames come from glibc's backtrace() (the unwinder walks the goroutine's
// own stack up to its fiber entry, where the chain ends), names from
// dladdr() and the C++ demangler: no dependency beyond libc and the C++
// runtime. dladdr sees only dynamic symbols — functions of shared libraries,
// and of the executable when it is linked with -rdynamic (CMake:
// ENABLE_EXPORTS) — so other frames are "??"; every frame also gives its
// module and offset, which `addr2line -Cfe module offset` turns into a
// function and file:line. Thread-safe; allocates (never call it from a
// signal handler).
#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "goro/runtime.hpp"
#include "scheduler/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr int max_frames = 128;

std::string demangled(const char* name) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                               &std::free);
    return status == 0 && out ? std::string(out.get()) : std::string(name);
}

void append_frame(std::string& out, void* pc) {
    // A return address points past its call: look up the byte before it, so
    // that a call that ends a function is not attributed to the next one.
    const auto addr = reinterpret_cast<std::uintptr_t>(pc);
    const auto lookup = reinterpret_cast<void*>(addr - 1);
    Dl_info info{};
    const bool found = ::dladdr(lookup, &info) != 0;
    out += found && info.dli_sname ? demangled(info.dli_sname) : std::string("??");
    out += "\n\t";
    char buf[64];
    if (found && info.dli_fname) {
        out += info.dli_fname;
        std::snprintf(
            buf, sizeof buf, " +0x%zx\n",
            static_cast<std::size_t>(addr - 1 - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
    } else {
        std::snprintf(buf, sizeof buf, "%p\n", pc);
    }
    out += buf;
}

}  // namespace

}  // namespace goro::detail

namespace goro {

[[gnu::noinline]] std::string stack() {
    // One more than shown, plus the frames left out below.
    void* frames[detail::max_frames + 2];
    const int n = ::backtrace(frames, detail::max_frames + 2);
    detail::goroutine* g = detail::this_goroutine_record();
    std::string out;
    if (g)
        out = "goroutine " + std::to_string(g->id) + " [running]:\n";
    else
        out = "plain thread [running] (not a goroutine):\n";
    // frames[0] is this function — or, under a sanitizer, its backtrace()
    // interceptor, and this function frames[1]: left out too when its
    // dynamic symbol says so (goro::stack[abi:cxx11]()).
    int first = 1;
    if (Dl_info info; first < n && ::dladdr(frames[first], &info) != 0 && info.dli_sname &&
                      std::string_view(info.dli_sname).starts_with("_ZN4goro5stackB"))
        ++first;
    // max_frames - 1 frames at most, the caller's first.
    const int end = n > first + detail::max_frames - 1 ? first + detail::max_frames - 1 : n;
    for (int i = first; i < end; ++i) detail::append_frame(out, frames[i]);
    if (n > end) out += "...additional frames elided...\n";
    if (g) {
        out += "created at ";
        out += g->where.file_name();
        out += ':';
        out += std::to_string(g->where.line());
        out += " in ";
        out += g->where.function_name();
        out += '\n';
    }
    return out;
}

}  // namespace goro
