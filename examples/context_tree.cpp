// context_tree: a request's deadline passed down through calls.
//
// handle_request() gets a context with a 300 ms deadline and a request id
// (with_value). It calls three steps, each taking the context as its first
// argument, as Go code does:
//   - lookup_user() adds its own, shorter budget (with_timeout 100 ms) and
//     finishes in time;
//   - load_orders() asks for 10 s, but a child's deadline is never later
//     than its parent's: it gets the request's remaining time, and gives up
//     with deadline_exceeded when that runs out;
//   - two watchers started with the request stop when it ends (its cancel()
//     cancels every descendant, never the parent).
// Every step reads the request id from the context, not from a parameter.
//
// Checked: the fast step succeeds, the slow one fails with
// deadline_exceeded at the request's deadline (not its own 10 s), each
// child's deadline is no later than its parent's, cancelling a step left
// the request running, and the watchers were cancelled with the request.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

const goro::context_key<std::string> request_id;  // keys compare by identity

std::string id_of(const goro::context& ctx) {
    const std::string* id = ctx.value(request_id);
    return id ? *id : "?";
}

// Simulated I/O: takes `d` unless the context ends first.
std::error_code io(const goro::context& ctx, goro::clock::duration d) {
    const std::size_t i =
        goro::select(goro::recv_case(goro::after(d)), goro::recv_case(ctx.done()));
    return i == 0 ? std::error_code{} : ctx.err();
}

bool deadline_within(const goro::context& child, const goro::context& parent) {
    return child.deadline() && parent.deadline() && *child.deadline() <= *parent.deadline();
}

int failures = 0;
void check(bool ok, const char* what) {
    std::printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) ++failures;
}

std::error_code lookup_user(const goro::context& ctx) {
    auto [step, cancel] = goro::with_timeout(ctx, 100ms);  // a budget for this step
    check(deadline_within(step, ctx), "lookup_user: deadline within the request's");
    std::error_code ec = io(step, 5ms);
    cancel();  // always: releases the step's timer now
    std::printf("[%s] lookup_user: %s\n", id_of(step).c_str(), ec ? ec.message().c_str() : "ok");
    return ec;
}

std::error_code load_orders(const goro::context& ctx) {
    auto [step, cancel] = goro::with_timeout(ctx, 10s);  // more than the request has left
    check(deadline_within(step, ctx), "load_orders: 10 s budget capped by the request");
    std::error_code ec = io(step, 1h);  // far too slow
    cancel();
    std::printf("[%s] load_orders: %s\n", id_of(step).c_str(), ec ? ec.message().c_str() : "ok");
    return ec;
}

}  // namespace

int main() {
    return goro::run([] {
        const goro::context server = goro::background();
        const auto t0 = goro::clock::now();
        auto [timed, cancel_request] = goro::with_timeout(server, 300ms);
        goro::context request = goro::with_value(timed, request_id, std::string("req-42"));

        // Watchers that live as long as the request.
        goro::wait_group watchers;
        std::atomic<int> stopped{0};
        for (int i = 0; i < 2; ++i)
            watchers.go([request, &stopped] {
                request.done().recv();  // closed when the request ends
                if (request.err()) stopped.fetch_add(1);
            });

        std::printf("[%s] handling, deadline in 300 ms\n", id_of(request).c_str());
        const std::error_code user = lookup_user(request);
        const bool request_live_after_step = !request.err();  // a child never cancels its parent
        const std::error_code orders = load_orders(request);
        const auto took = goro::clock::now() - t0;
        cancel_request();  // ends the request: the watchers stop
        watchers.wait();

        std::printf("checks:\n");
        check(!user, "lookup_user succeeded within its own budget");
        check(request_live_after_step, "lookup_user's cancel() left the request running");
        check(orders == goro::errc::deadline_exceeded, "load_orders hit the request's deadline");
        check(took >= 300ms && took < 5s, "the request ended at its deadline, not after 10 s");
        check(stopped.load() == 2, "both watchers were cancelled with the request");
        check(!server.err() && server.done().is_nil(),
              "the background context was never cancelled (and cannot be)");
        std::printf("context tree: %s after %lld ms\n",
                    failures == 0 ? "all checks passed" : "FAILED",
                    static_cast<long long>(
                        std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
        return failures == 0 ? 0 : 1;
    });
}
