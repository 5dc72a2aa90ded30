// Shared by the C++ workload programs (goro.cpp, fiber.cpp): the command
// line, the registry of workloads by name, the result line, timing and the
// /proc readers. bench/workloads.tsv is the table of workloads; each program
// implements every row as one function registered under the row's name, and
// bench/compare.py drives the programs from the table.
//
//   <prog> <workload> <procs> <n> <reps> [key=value ...]
//   <prog> --list          the workloads this program implements, one a line
//   <prog> --version       one line: the implementation and its versions
//
// Each rep prints one line on stdout (nothing else goes to stdout):
//   RESULT <impl> <workload> <procs> <value>
// where value is in the row's unit, or "n/a" followed by "# <reason>" when
// the implementation has no honest equivalent of the workload. Exit status:
// 0 ok, 2 usage (unknown workload, missing key=value parameter), 1 a
// workload found a wrong result (lost items, wrong sum).
//
// Invariants: a workload function returns a finite value >= 0 in the row's
// unit or throws; it leaves nothing running (every goroutine or fiber it
// started has ended) so the next rep starts clean. No locks here.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <span>
#include <stdexcept>
#include <string>

namespace wl {

struct args {
    std::string workload;
    unsigned procs = 0;
    long n = 0;
    int reps = 1;
    std::map<std::string, long> params;

    // A key=value parameter from the table row; missing is a usage error.
    long param(const char* key) const {
        auto it = params.find(key);
        if (it == params.end())
            throw std::invalid_argument(workload + ": missing parameter " + key + "=...");
        return it->second;
    }
};

// Thrown by a workload the implementation cannot do honestly.
struct not_available : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Thrown when a workload's result is wrong (lost items, wrong sum).
struct wrong_result : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline void check(bool ok, const char* what) {
    if (!ok) throw wrong_result(what);
}

struct entry {
    const char* name;
    double (*run)(const args&);
};

using clock = std::chrono::steady_clock;
inline double ms_since(clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
}
inline double ns_per(clock::time_point t0, double ops) {
    return std::chrono::duration<double, std::nano>(clock::now() - t0).count() / ops;
}

// User + system CPU seconds of the whole process so far.
inline double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

// A "Key:   123 kB" line of /proc/self/status, in KiB (-1 if absent).
inline long status_kib(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const std::size_t len = std::strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, len, key) == 0 && line.size() > len && line[len] == ':')
            return std::stol(line.substr(len + 1));
    return -1;
}
// Resident memory plus page tables, in bytes.
inline double rss_pte_bytes() {
    return double(status_kib("VmRSS") + status_kib("VmPTE")) * 1024.0;
}

// Parses the command line into a; returns -1 to go on, else an exit status.
inline int parse(int argc, char** argv, const char* version, std::span<const entry> table,
                 args& a) {
    if (argc == 2 && !std::strcmp(argv[1], "--list")) {
        for (const auto& e : table) std::printf("%s\n", e.name);
        return 0;
    }
    if (argc == 2 && !std::strcmp(argv[1], "--version")) {
        std::printf("%s\n", version);
        return 0;
    }
    if (argc < 5) {
        std::fprintf(stderr,
                     "usage: %s <workload> <procs> <n> <reps> [key=value ...] | --list | "
                     "--version\n",
                     argv[0]);
        return 2;
    }
    a.workload = argv[1];
    char* end = nullptr;
    a.procs = unsigned(std::strtoul(argv[2], &end, 10));
    if (*end || a.procs == 0) return std::fprintf(stderr, "bad procs: %s\n", argv[2]), 2;
    a.n = std::strtol(argv[3], &end, 10);
    if (*end || a.n <= 0) return std::fprintf(stderr, "bad n: %s\n", argv[3]), 2;
    a.reps = int(std::strtol(argv[4], &end, 10));
    if (*end || a.reps <= 0) return std::fprintf(stderr, "bad reps: %s\n", argv[4]), 2;
    for (int i = 5; i < argc; ++i) {
        const char* eq = std::strchr(argv[i], '=');
        if (!eq) return std::fprintf(stderr, "bad parameter (want key=value): %s\n", argv[i]), 2;
        long v = std::strtol(eq + 1, &end, 10);
        if (*end || eq[1] == '\0')
            return std::fprintf(stderr, "bad parameter value: %s\n", argv[i]), 2;
        a.params[std::string(argv[i], std::size_t(eq - argv[i]))] = v;
    }
    return -1;
}

inline const entry* find(std::span<const entry> table, const std::string& name) {
    for (const auto& e : table)
        if (name == e.name) return &e;
    return nullptr;
}

// Runs a.reps reps of e and prints a RESULT line for each; returns the exit
// status. Called by each program inside its runtime (goro::run, the fiber
// pool's main fiber).
inline int run_reps(const char* impl, const entry& e, const args& a) {
    try {
        for (int r = 0; r < a.reps; ++r) {
            double v = e.run(a);
            if (!std::isfinite(v) || v < 0) throw wrong_result("value not finite and >= 0");
            std::printf("RESULT %s %s %u %.6g\n", impl, e.name, a.procs, v);
            std::fflush(stdout);
        }
        return 0;
    } catch (const not_available& x) {
        std::printf("RESULT %s %s %u n/a # %s\n", impl, e.name, a.procs, x.what());
        std::fflush(stdout);
        return 0;
    } catch (const std::invalid_argument& x) {
        std::fprintf(stderr, "%s: %s\n", impl, x.what());
        return 2;
    } catch (const std::exception& x) {
        std::fprintf(stderr, "%s %s: %s\n", impl, e.name, x.what());
        return 1;
    }
}

}  // namespace wl
