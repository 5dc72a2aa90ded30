// rate_limiter: a token bucket filled by a ticker (Go by Example's "rate
// limiting", bursty version).
//
// The bucket is a buffered channel of goro::unit tokens whose capacity is
// the burst size. It starts full; a goroutine adds one token per tick of a
// goro::ticker with try_send, which drops the token when the bucket is full
// (unused capacity does not accumulate beyond the burst). A request takes a
// token before it proceeds: a blocking recv() waits for one, and a select
// against the request's context gives up when the deadline comes first.
//
// Part 1: 10 requests arrive at once with a burst of 3 and one token every
// 10 ms: 3 go through at once, the other 7 one per tick.
// Part 2: with the bucket empty and refills far apart, a request with a
// 20 ms deadline gives up instead of waiting.
//
// Checked: the first 3 requests took a token without waiting (try_recv);
// all 10 were served; the last could not be served before 7 ticks had
// passed (>= 70 ms: a ticker never fires early); part 2 gave up with
// deadline_exceeded.
#include <chrono>
#include <cstdio>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

class token_bucket {
  public:
    // Starts full. Refills one token per `every` until stop() or destruction.
    token_bucket(std::size_t burst, goro::clock::duration every)
        : tokens_(goro::make_chan<goro::unit>(burst)) {
        for (std::size_t i = 0; i < burst; ++i) tokens_.send(goro::unit{});
        auto [ctx, cancel] = goro::with_cancel(goro::background());
        stop_ = cancel;
        goro::go(
            [tokens = tokens_, every](goro::context ctx) {
                goro::ticker tick(every);
                for (bool running = true; running;)
                    goro::select(goro::recv_case(
                                     tick.c(), [&](auto) { (void)tokens.try_send(goro::unit{}); }),
                                 goro::recv_case(ctx.done(), [&](auto) { running = false; }));
            },
            ctx);
    }
    ~token_bucket() { stop_(); }
    token_bucket(const token_bucket&) = delete;
    token_bucket& operator=(const token_bucket&) = delete;

    // Waits for a token.
    void take() const { tokens_.recv(); }
    // Takes a token if one is there now.
    bool try_take() const { return static_cast<bool>(tokens_.try_recv()); }
    // Waits for a token until ctx ends: {} with a token, else ctx.err().
    std::error_code take(const goro::context& ctx) const {
        const std::size_t i = goro::select(goro::recv_case(tokens_), goro::recv_case(ctx.done()));
        return i == 0 ? std::error_code{} : ctx.err();
    }

  private:
    goro::chan<goro::unit> tokens_;
    goro::cancel_func stop_;
};

long ms_since(goro::clock::time_point t0) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(goro::clock::now() - t0).count());
}

}  // namespace

int main() {
    return goro::run([] {
        int failures = 0;

        // Part 1: 10 requests at once; burst 3, then one per 10 ms.
        {
            const auto t0 = goro::clock::now();
            token_bucket limiter(3, 10ms);
            int immediate = 0;
            std::vector<long> served_at;
            for (int req = 1; req <= 10; ++req) {
                if (limiter.try_take()) {
                    ++immediate;
                } else {
                    limiter.take();
                }
                served_at.push_back(ms_since(t0));
            }
            std::printf("served at (ms):");
            for (long t : served_at) std::printf(" %ld", t);
            std::printf("\n");
            std::printf("part 1: %d served from the burst, 10 served in %ld ms (>= 70 expected)\n",
                        immediate, served_at.back());
            if (immediate != 3 || served_at.size() != 10 || served_at.back() < 70) ++failures;
        }

        // Part 2: empty bucket, refills an hour apart, a 20 ms deadline.
        {
            token_bucket limiter(1, 1h);
            limiter.take();  // empty it
            auto [ctx, cancel] = goro::with_timeout(goro::background(), 20ms);
            const std::error_code ec = limiter.take(ctx);
            cancel();
            std::printf("part 2: a request with a 20 ms deadline: %s\n",
                        ec ? ec.message().c_str() : "served (unexpected)");
            if (ec != goro::errc::deadline_exceeded) ++failures;
        }

        std::printf("rate limiter: %s\n", failures == 0 ? "all checks passed" : "FAILED");
        return failures;
    });
}
