// pubsub: a broker goroutine that owns its subscribers ("share memory by
// communicating"): subscribe, unsubscribe and publish are messages on
// channels, and one select loop serves them, a stats ticker and shutdown.
//
// Each subscriber has a buffered channel; the broker delivers with
// try_send, so a slow subscriber loses messages (counted as dropped)
// instead of stalling everyone. Unsubscribing closes the subscriber's
// channel, which ends its range-for loop. Subscriber channels are the keys
// of the broker's std::set (channels compare and order by identity, and a
// recv_chan finds the chan it is a view of).
// Requests are sent on unbuffered channels, so each is taken by the broker
// before the caller goes on: a publish made before an unsubscribe is
// delivered before it.
//
// Scenario: subscribers "all" (reads everything), "early" (unsubscribed
// after 5 messages) and "stalled" (buffer 3, does not read until the end);
// 10 messages are published.
//
// Checked: "all" got 10, "early" got exactly the first 5 and saw its
// channel closed, "stalled" got 3 with 7 dropped, and the broker's totals
// agree.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <string>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

struct stats {
    long published = 0, delivered = 0, dropped = 0;
};

class broker {
  public:
    explicit broker(goro::clock::duration stats_every) {
        goro::go([this, stats_every] { loop(stats_every); });
    }

    // A new subscription whose channel buffers up to `buffer` messages.
    goro::recv_chan<std::string> subscribe(std::size_t buffer) {
        auto ch = goro::make_chan<std::string>(buffer);
        subscribe_.send(ch);
        return ch;
    }
    // Closes the subscription's channel; messages published later never reach it.
    void unsubscribe(goro::recv_chan<std::string> ch) { unsubscribe_.send(ch); }
    void publish(std::string msg) { publish_.send(std::move(msg)); }
    // Stops the broker, closing every subscription; returns its totals.
    stats shutdown() {
        auto reply = goro::make_chan<stats>(1);
        quit_.send(reply);
        return *reply.recv();
    }

  private:
    void loop(goro::clock::duration stats_every) {
        // Channels as set keys; std::less<> lets a recv_chan find the chan it views.
        std::set<goro::chan<std::string>, std::less<>> subs;
        stats st;
        goro::ticker stats_tick(stats_every);
        for (bool running = true; running;) {
            goro::select(goro::recv_case(
                             subscribe_,
                             [&](std::optional<goro::chan<std::string>> ch) { subs.insert(*ch); }),
                         goro::recv_case(unsubscribe_,
                                         [&](std::optional<goro::recv_chan<std::string>> ch) {
                                             auto it = subs.find(*ch);
                                             if (it == subs.end()) return;
                                             it->close();
                                             subs.erase(it);
                                         }),
                         goro::recv_case(publish_,
                                         [&](std::optional<std::string> msg) {
                                             ++st.published;
                                             for (const auto& sub : subs)
                                                 ++(sub.try_send(*msg) ? st.delivered : st.dropped);
                                         }),
                         goro::recv_case(stats_tick.c(),
                                         [&](auto) {
                                             std::printf(
                                                 "  stats: %zu subscribers, %ld published, %ld "
                                                 "delivered, %ld dropped\n",
                                                 subs.size(), st.published, st.delivered,
                                                 st.dropped);
                                         }),
                         goro::recv_case(quit_, [&](std::optional<goro::chan<stats>> reply) {
                             for (const auto& sub : subs) sub.close();
                             reply->send(st);
                             running = false;
                         }));
        }
    }

    goro::chan<goro::chan<std::string>> subscribe_ = goro::make_chan<goro::chan<std::string>>();
    goro::chan<goro::recv_chan<std::string>> unsubscribe_ =
        goro::make_chan<goro::recv_chan<std::string>>();
    goro::chan<std::string> publish_ = goro::make_chan<std::string>();
    goro::chan<goro::chan<stats>> quit_ = goro::make_chan<goro::chan<stats>>();
};

// A subscriber reading until its channel is closed; counts what it got.
void read_all(goro::recv_chan<std::string> ch, std::atomic<int>& got, goro::wait_group& wg) {
    wg.go([ch, &got] {
        for (const std::string& msg : ch) {
            (void)msg;
            got.fetch_add(1);
        }
    });
}

}  // namespace

int main() {
    return goro::run([] {
        broker b(10ms);
        goro::wait_group readers;
        std::atomic<int> all{0}, early{0};
        auto all_ch = b.subscribe(16);
        auto early_ch = b.subscribe(16);
        auto stalled_ch = b.subscribe(3);
        read_all(all_ch, all, readers);
        read_all(early_ch, early, readers);

        for (int i = 1; i <= 10; ++i) {
            if (i == 6) b.unsubscribe(early_ch);
            b.publish("message " + std::to_string(i));
            goro::sleep_for(3ms);  // slow enough for the stats ticker to report
        }
        const stats st = b.shutdown();  // closes "all" and "stalled"
        readers.wait();
        int stalled = 0;
        for (const std::string& msg : stalled_ch) stalled += !msg.empty();

        std::printf(
            "all got %d, early got %d, stalled got %d; broker: %ld published, %ld "
            "delivered, %ld dropped\n",
            all.load(), early.load(), stalled, st.published, st.delivered, st.dropped);
        const bool ok = all.load() == 10 && early.load() == 5 && stalled == 3 &&
                        st.published == 10 && st.delivered == 10 + 5 + 3 && st.dropped == 7;
        std::printf("pubsub: %s\n", ok ? "all checks passed" : "FAILED");
        return ok ? 0 : 1;
    });
}
