// http_server: a minimal HTTP/1.1 server with one goroutine per connection,
// written the way a Go program uses net/http — with the parts net/http hides
// spelled out: the accept loop, reading a request, keep-alive, deadlines and
// graceful shutdown.
//
//   example_http_server 127.0.0.1:8080   serve until SIGTERM or SIGINT
//   example_http_server 127.0.0.1:0      ... on a free port
//   example_http_server                  self-check (what the test suite runs):
//                                        serve on a free port, run clients
//                                        against it, shut down, exit 0 if all
//                                        went well
//
// The first line printed is "listening on HOST:PORT".
//
// Endpoints: GET / answers "Hello, World!" (text/plain), GET /json answers
// {"message":"Hello, World!"} (application/json); HEAD works on both; other
// paths get 404, other methods 405, malformed requests 400.
//
// What it shows:
//  - an accept loop that starts a goroutine per connection and, when accept
//    fails for lack of descriptors (EMFILE), backs off 5 ms, 10 ms, ... up to
//    1 s and keeps serving, as net/http does;
//  - a connection read through a buffer: keep-alive, pipelined requests, one
//    write per batch of responses, limits on the request head and body;
//  - deadlines against slow or silent clients: an idle keep-alive connection
//    is closed after idle_timeout; a request must arrive whole within
//    request_timeout of its first byte (a client trickling bytes, slowloris,
//    is cut off); a response must be taken within write_timeout;
//  - graceful shutdown on SIGTERM/SIGINT (Go's signal.NotifyContext and
//    Server.Shutdown): stop accepting, close idle connections, let requests
//    in flight finish within a deadline, then close what is left.
//
// Not here (a real server needs them): chunked request bodies (answered 501),
// Expect: 100-continue, TLS, HTTP/2.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "goro/net.hpp"

using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------
// Limits and timeouts
// ---------------------------------------------------------------------------

// A request head (request line and header fields) must fit in this many
// bytes; a longer one is answered 431. It is also the size of a connection's
// input buffer.
constexpr std::size_t max_head_bytes = 8 * 1024;
// At most this many header fields (431 beyond).
constexpr int max_header_fields = 100;
// Request bodies are read and thrown away (no endpoint takes one); a larger
// one is answered 413 and the connection closed.
constexpr std::size_t max_body_bytes = 1024 * 1024;
// Responses are collected while more pipelined requests are waiting, and
// written once this many bytes are pending (or nothing is left to answer).
constexpr std::size_t flush_threshold = 64 * 1024;

struct server_config {
    // A keep-alive connection with no request coming is closed after this.
    goro::clock::duration idle_timeout = 60s;
    // From the first byte of a request until its head and body are in.
    goro::clock::duration request_timeout = 10s;
    // For the client to take a batch of responses.
    goro::clock::duration write_timeout = 10s;
    // After the last response of a connection, how long to keep reading (and
    // discarding) what the client still sends before closing; see linger().
    goro::clock::duration linger_timeout = 500ms;
};

// ---------------------------------------------------------------------------
// Parsing a request head
// ---------------------------------------------------------------------------

// What the server needs from a request head. The views point into the
// connection's input buffer: they are valid until the buffer is refilled.
struct request {
    std::string_view method;  // "GET"
    std::string_view target;  // "/json?x=1" (or absolute form "http://host/json")
    int minor_version = 1;    // HTTP/1.<minor_version>
    std::size_t content_length = 0;
    bool has_content_length = false;
    bool has_transfer_encoding = false;
    int host_fields = 0;
    bool connection_close = false;       // Connection: close
    bool connection_keep_alive = false;  // Connection: keep-alive

    // HTTP/1.1 keeps the connection open unless asked not to; HTTP/1.0 closes
    // it unless asked not to.
    bool keep_alive() const {
        return minor_version >= 1 ? !connection_close : connection_keep_alive;
    }
};

// The status codes this server answers with.
namespace http_status {
constexpr int ok = 200;
constexpr int bad_request = 400;
constexpr int not_found = 404;
constexpr int method_not_allowed = 405;
constexpr int content_too_large = 413;
constexpr int header_fields_too_large = 431;
constexpr int not_implemented = 501;
constexpr int version_not_supported = 505;
}  // namespace http_status

std::string_view reason_phrase(int status) {
    using namespace http_status;
    switch (status) {
        case ok:
            return "OK";
        case bad_request:
            return "Bad Request";
        case not_found:
            return "Not Found";
        case method_not_allowed:
            return "Method Not Allowed";
        case content_too_large:
            return "Content Too Large";
        case header_fields_too_large:
            return "Request Header Fields Too Large";
        case not_implemented:
            return "Not Implemented";
        case version_not_supported:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

// RFC 9110's tchar: the characters of a method or a header field name.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Header names and options are case-insensitive.
bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Finding where a head ends. A head arriving in pieces is scanned once, not
// once per piece: the scan resumes where it stopped.
struct head_scan {
    std::size_t line_start = 0;  // the first line not yet seen whole
    bool seen_line = false;      // a non-empty line came before
};

// Returns the length of the head at the start of data, up to and including
// the empty line that ends it, or 0 while that line has not arrived. Lines
// end with CRLF or a bare LF (RFC 9112 lets a server accept LF). Empty lines
// before the request line are skipped, as RFC 9112 asks.
std::size_t find_head_end(std::string_view data, head_scan& scan) {
    for (;;) {
        std::size_t nl = data.find('\n', scan.line_start);
        if (nl == std::string_view::npos) return 0;
        std::size_t len = nl - scan.line_start;
        bool empty = len == 0 || (len == 1 && data[scan.line_start] == '\r');
        scan.line_start = nl + 1;
        if (!empty) {
            scan.seen_line = true;
        } else if (scan.seen_line) {
            return nl + 1;
        }
    }
}

// Splits off the first line of text (without its CRLF or LF).
std::string_view next_line(std::string_view& text) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// "GET /path HTTP/1.1": three parts separated by single spaces.
// Returns 0 or the status to answer.
int parse_request_line(std::string_view line, request& req) {
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return http_status::bad_request;
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return http_status::bad_request;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);

    if (!is_token(req.method) || req.target.empty()) return http_status::bad_request;
    // Visible ASCII only: no spaces, controls or bytes above 0x7e.
    for (char c : req.target)
        if (c <= ' ' || c > '~') return http_status::bad_request;
    if (req.target.front() != '/' && !req.target.starts_with("http://") &&
        !req.target.starts_with("https://"))
        return http_status::bad_request;

    // "HTTP/" DIGIT "." DIGIT; only 1.0 and 1.1 are spoken here.
    if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return http_status::bad_request;
    if (version[5] != '1') return http_status::version_not_supported;
    req.minor_version = version[7] - '0';
    return 0;
}

// A decimal Content-Length. Anything else (signs, spaces, a list) is an error.
bool parse_content_length(std::string_view value, std::size_t& out) {
    if (value.empty() || value.size() > 18) return false;  // 18 digits cannot overflow
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size()) return false;
    out = n;
    return true;
}

// "Name: value". Only the fields that change how the request is read or
// answered are kept. Returns 0 or the status to answer.
int parse_header_field(std::string_view line, request& req) {
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return http_status::bad_request;
    std::string_view name = line.substr(0, colon);
    // A name must be a token: this also rejects a space before the colon and
    // obsolete line folding (a line starting with a space), as RFC 9112 asks.
    if (!is_token(name)) return http_status::bad_request;
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value)
        if ((static_cast<unsigned char>(c) < ' ' && c != '\t') || c == 0x7f)
            return http_status::bad_request;

    if (iequals(name, "Host")) {
        ++req.host_fields;
    } else if (iequals(name, "Content-Length")) {
        std::size_t n = 0;
        if (!parse_content_length(value, n)) return http_status::bad_request;
        // Two different lengths would let two readers frame the request
        // differently (request smuggling): refuse.
        if (req.has_content_length && n != req.content_length) return http_status::bad_request;
        req.content_length = n;
        req.has_content_length = true;
    } else if (iequals(name, "Transfer-Encoding")) {
        req.has_transfer_encoding = true;
    } else if (iequals(name, "Connection")) {
        // A comma-separated list of options.
        while (!value.empty()) {
            std::size_t comma = value.find(',');
            std::string_view option = trim(value.substr(0, comma));
            if (iequals(option, "close")) req.connection_close = true;
            if (iequals(option, "keep-alive")) req.connection_keep_alive = true;
            value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
        }
    }
    return 0;
}

// Parses a whole head, as find_head_end delimited it. Returns 0 or the status
// to answer (the connection is then closed: after a malformed request, where
// the next one starts is unknown).
int parse_request_head(std::string_view head, request& req) {
    std::string_view line;
    do {
        line = next_line(head);  // skips the empty lines before the request line
    } while (line.empty());
    if (int err = parse_request_line(line, req)) return err;

    int fields = 0;
    while (!(line = next_line(head)).empty()) {
        if (++fields > max_header_fields) return http_status::header_fields_too_large;
        if (int err = parse_header_field(line, req)) return err;
    }
    // HTTP/1.1 requires exactly one Host field (RFC 9112, section 3.2).
    if (req.minor_version >= 1 && req.host_fields != 1) return http_status::bad_request;
    if (req.host_fields > 1) return http_status::bad_request;
    // Chunked bodies are not decoded here: refuse rather than misframe.
    if (req.has_transfer_encoding) return http_status::not_implemented;
    return 0;
}

// ---------------------------------------------------------------------------
// Routing and writing a response
// ---------------------------------------------------------------------------

constexpr std::string_view hello_body = "Hello, World!";
constexpr std::string_view json_body = R"({"message":"Hello, World!"})";
constexpr std::string_view text_type = "text/plain; charset=utf-8";

struct response {
    int status = http_status::ok;
    std::string_view content_type = text_type;
    std::string_view body;
    bool allow_header = false;  // "Allow: GET, HEAD" (with 405)
};

// The request target's path: the query is dropped, and an absolute-form
// target ("http://host/path") is reduced to its path.
std::string_view request_path(std::string_view target) {
    if (target.front() != '/') {
        std::size_t scheme_end = target.find("://");
        std::size_t path = target.find('/', scheme_end + 3);
        if (path == std::string_view::npos) return "/";
        target.remove_prefix(path);
    }
    return target.substr(0, target.find('?'));
}

// The application: what each request gets.
response route(const request& req) {
    std::string_view path = request_path(req.target);
    response r;
    if (path == "/") {
        r.body = hello_body;
    } else if (path == "/json") {
        r.content_type = "application/json";
        r.body = json_body;
    } else {
        return {http_status::not_found, text_type, "404 page not found\n"};
    }
    if (req.method != "GET" && req.method != "HEAD")
        return {http_status::method_not_allowed, text_type, "405 method not allowed\n", true};
    return r;
}

// The value of the Date header, "Thu, 26 Nov 2026 09:51:09 GMT" (RFC 9110's
// IMF-fixdate). Formatting it costs more than the rest of a response, so each
// worker thread keeps the last one and formats again when the second changes.
// Appended directly: a view of it would belong to this thread, and the
// goroutine may be on another thread after its next park.
void append_http_date(std::string& out) {
    struct cache {
        std::time_t second = -1;
        char text[64] = {};
        std::size_t size = 0;
    };
    thread_local cache c;
    std::time_t now = std::time(nullptr);
    if (now != c.second) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        c.size = std::strftime(c.text, sizeof c.text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        c.second = now;
    }
    out.append(c.text, c.size);
}

// Appends a whole response — status line, headers, body — to out.
// connection: "close", "keep-alive" (for an HTTP/1.0 client that asked), or
// empty (HTTP/1.1's default, keep-alive).
void append_response(std::string& out, const response& r, bool with_body,
                     std::string_view connection) {
    char num[24];
    auto put_number = [&](std::size_t n) {
        auto [end, ec] = std::to_chars(num, num + sizeof num, n);
        out.append(num, end);
    };
    out += "HTTP/1.1 ";
    put_number(static_cast<std::size_t>(r.status));
    out += ' ';
    out += reason_phrase(r.status);
    out += "\r\nContent-Type: ";
    out += r.content_type;
    out += "\r\nContent-Length: ";
    put_number(r.body.size());  // HEAD: the length a GET would get
    out += "\r\nDate: ";
    append_http_date(out);
    if (r.allow_header) out += "\r\nAllow: GET, HEAD";
    if (!connection.empty()) {
        out += "\r\nConnection: ";
        out += connection;
    }
    out += "\r\n\r\n";
    if (with_body) out += r.body;
}

// An error response for a request that could not be read: always closes.
void append_error(std::string& out, int status) {
    // Bodies as net/http writes them: "400 Bad Request".
    std::string body = std::to_string(status) + ' ' + std::string(reason_phrase(status));
    append_response(out, {status, text_type, body}, true, "close");
}

// ---------------------------------------------------------------------------
// A connection's input
// ---------------------------------------------------------------------------

// Bytes received and not yet consumed. The buffer holds at most one request
// head (max_head_bytes); a pipelining client's next requests wait in the
// kernel until there is room.
class input_buffer {
  public:
    std::string_view data() const { return {buf_ + begin_, end_ - begin_}; }
    bool empty() const { return begin_ == end_; }
    bool full() const { return begin_ == 0 && end_ == sizeof buf_; }

    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }

    // Reads what the connection has (at least one byte, parking until then).
    // Returns false at end of stream. Throws on errors and deadlines.
    bool fill(goro::net::conn& c) {
        if (begin_ > 0) {  // move the unconsumed bytes to the front
            std::memmove(buf_, buf_ + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        std::size_t n = c.read(buf_ + end_, sizeof buf_ - end_);
        end_ += n;
        return n > 0;
    }

  private:
    char buf_[max_head_bytes];
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

// Go's net/http Server, reduced to what this example needs:
//
//   server srv(goro::net::listen("tcp", "127.0.0.1:8080"));
//   goro::go([&] { ...; srv.shutdown(ctx); });   // from elsewhere
//   srv.serve();                                  // returns once shut down
class server {
  public:
    explicit server(goro::net::listener ln, server_config cfg = {})
        : ln_(std::move(ln)), cfg_(cfg) {}

    std::string address() const { return ln_.address(); }

    // Accepts connections, each served by its own goroutine, until shutdown()
    // closes the listener.
    void serve();

    // Go's Server.Shutdown: stops accepting, closes idle connections, waits
    // for the connections with a request in flight to finish it. Returns true
    // then; if ctx is done first, closes every connection left, waits for
    // their goroutines, and returns false.
    bool shutdown(const goro::context& ctx);

    // Connections open now, by state (the self-check watches them).
    struct counts {
        std::size_t idle = 0;
        std::size_t active = 0;
    };
    counts connection_counts();

  private:
    // idle: waiting for (the rest of) a request head — shutdown may close it.
    // active: a request is being answered — shutdown lets it finish.
    enum class conn_state { idle, active };

    // When a deadline in force was set, and for what timeout (see
    // read_timeout).
    struct deadline_set {
        goro::clock::time_point when{};
        goro::clock::duration timeout{};
    };

    struct connection {
        explicit connection(goro::net::conn c) : c(std::move(c)) {}
        goro::net::conn c;
        std::atomic<conn_state> state{conn_state::idle};
        input_buffer in;
        std::string out;  // responses not written yet
        deadline_set read_deadline, write_deadline;
    };

    void start_connection(goro::net::conn c);
    void serve_connection(connection& cn);
    enum class head_status { complete, end_of_stream, too_large };
    head_status read_head(connection& cn, std::size_t& head_len);
    void discard_body(connection& cn, std::size_t length);
    void flush(connection& cn);
    void linger(connection& cn);
    bool set_idle(connection& cn);
    static void read_timeout(connection& cn, goro::clock::duration timeout);
    static void write_timeout(connection& cn, goro::clock::duration timeout);

    goro::net::listener ln_;
    const server_config cfg_;
    std::atomic<bool> shutting_down_{false};
    goro::chan<goro::unit> stop_ = goro::make_chan<goro::unit>();  // closed by shutdown()
    goro::mutex mu_;                                               // guards conns_
    std::unordered_set<connection*> conns_;
    goro::wait_group conn_goroutines_;
};

void server::serve() {
    goro::clock::duration backoff{};
    for (;;) {
        goro::net::conn c;
        try {
            c = ln_.accept();
        } catch (const std::system_error& e) {
            if (e.code() == goro::errc::closed) return;  // shutdown() closed the listener
            // The client gave up while waiting in the backlog: nothing to back
            // off from.
            if (e.code() == std::errc::connection_aborted) continue;
            // Out of descriptors (EMFILE, ENFILE) or memory: the connection
            // stays queued in the kernel. Retrying at once would spin; wait,
            // longer each time, and keep serving the connections we have
            // (closing them frees descriptors).
            backoff = backoff == goro::clock::duration::zero()
                          ? goro::clock::duration(5ms)
                          : std::min<goro::clock::duration>(2 * backoff, 1s);
            std::fprintf(
                stderr, "http_server: accept: %s; retrying in %lld ms\n",
                e.code().message().c_str(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count()));
            goro::select(goro::recv_case(goro::after(backoff)), goro::recv_case(stop_));
            continue;
        }
        backoff = goro::clock::duration::zero();
        start_connection(std::move(c));
    }
}

void server::start_connection(goro::net::conn c) {
    auto cn = std::make_unique<connection>(std::move(c));
    {
        std::lock_guard lock(mu_);
        if (shutting_down_) return;  // accepted just before shutdown: cn closes it
        conns_.insert(cn.get());
        conn_goroutines_.add(1);
    }
    goro::go([this, cn = std::move(cn)]() mutable {
        serve_connection(*cn);
        {
            std::lock_guard lock(mu_);  // shutdown() may be closing it right now
            conns_.erase(cn.get());
        }
        cn.reset();  // closes the socket
        conn_goroutines_.done();
    });
}

// A connection's goroutine: reads requests and answers them until the client
// closes, a deadline passes, an error occurs or the server shuts down.
void server::serve_connection(connection& cn) {
    try {
        for (;;) {
            if (!set_idle(cn)) {  // shutting down
                flush(cn);
                return;
            }
            std::size_t head_len = 0;
            head_status got = read_head(cn, head_len);
            if (got == head_status::end_of_stream) return;  // the client is done
            if (got == head_status::too_large) {
                append_error(cn.out, http_status::header_fields_too_large);
                break;
            }
            cn.state = conn_state::active;

            request req;
            if (int err = parse_request_head(cn.in.data().substr(0, head_len), req)) {
                append_error(cn.out, err);
                break;
            }
            if (req.content_length > max_body_bytes) {
                append_error(cn.out, http_status::content_too_large);
                break;
            }
            // Everything needed from req is taken before the head is
            // consumed: its views point into the input buffer, which reading
            // the body overwrites.
            response resp = route(req);
            bool with_body = req.method != "HEAD";
            bool keep_alive = req.keep_alive();
            bool http10 = req.minor_version == 0;
            cn.in.consume(head_len);
            discard_body(cn, req.content_length);

            // Decided once the request is in, as net/http does: a request
            // that was in flight when shutdown began is told the connection
            // closes after it.
            keep_alive = keep_alive && !shutting_down_;
            std::string_view connection_header = !keep_alive ? "close" : http10 ? "keep-alive" : "";
            append_response(cn.out, resp, with_body, connection_header);
            if (!keep_alive) break;
            // More requests already here (pipelining): answer them before
            // writing, so that a batch goes out in one write.
            if (cn.in.empty() || cn.out.size() >= flush_threshold) flush(cn);
        }
        flush(cn);
        linger(cn);
    } catch (const std::system_error&) {
        // The client vanished (ECONNRESET, EPIPE), a deadline passed, or
        // shutdown closed the connection: nothing to tell anyone.
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_server: connection: %s\n", e.what());
    }
}

// Marks the connection idle between requests. Returns false if the server is
// shutting down: the connection is then closed rather than kept alive.
bool server::set_idle(connection& cn) {
    // Paired with shutdown(): it sets shutting_down_ and then looks for idle
    // connections; we set idle and then look at shutting_down_. Sequentially
    // consistent atomics make sure at least one of us sees the other.
    cn.state.store(conn_state::idle);
    return !shutting_down_.load();
}

// Reads until the input holds a whole request head, and sets head_len to its
// length. Or: the client closed the connection between two requests
// (end_of_stream), or the head does not fit in the buffer (too_large).
server::head_status server::read_head(connection& cn, std::size_t& head_len) {
    head_scan scan;
    // Waiting for a request to start: the idle timeout. (Pipelined bytes
    // already here count as a start.)
    if (cn.in.empty()) read_timeout(cn, cfg_.idle_timeout);
    bool deadline_is_request = false;
    for (;;) {
        if ((head_len = find_head_end(cn.in.data(), scan)) != 0) return head_status::complete;
        if (cn.in.full()) return head_status::too_large;
        // Never wait for input while holding output: the client may be
        // waiting for it before it sends more.
        flush(cn);
        if (!cn.in.empty() && !deadline_is_request) {
            // Part of a request is here: the rest has request_timeout to come.
            read_timeout(cn, cfg_.request_timeout);
            deadline_is_request = true;
        }
        if (!cn.in.fill(cn.c)) {
            if (!cn.in.empty()) throw std::system_error(goro::errc::unexpected_eof);  // mid-request
            return head_status::end_of_stream;
        }
    }
}

// Reads and drops a request body of `length` bytes (the request deadline
// applies).
void server::discard_body(connection& cn, std::size_t length) {
    if (length == 0) return;
    bool deadline_set = false;
    for (;;) {
        std::size_t n = std::min(length, cn.in.data().size());
        cn.in.consume(n);
        length -= n;
        if (length == 0) return;
        flush(cn);
        if (!deadline_set) {
            read_timeout(cn, cfg_.request_timeout);
            deadline_set = true;
        }
        if (!cn.in.fill(cn.c)) throw std::system_error(goro::errc::unexpected_eof);
    }
}

// Deadlines. Setting one costs a clock read, two locks and a timer update; a
// busy keep-alive connection would pay that twice per request (idle and
// write), for deadlines seconds away. So a deadline set for the same timeout
// less than 1/16 of it ago is left alone: a timeout then holds to within
// 1/16 (an idle connection is closed after 56 to 60 s) at the price of one
// clock read per request.
namespace {
bool deadline_due(goro::clock::time_point now, goro::clock::duration timeout, auto& last) {
    if (last.timeout == timeout && now - last.when < timeout / 16) return false;
    last.when = now;
    last.timeout = timeout;
    return true;
}
}  // namespace

void server::read_timeout(connection& cn, goro::clock::duration timeout) {
    auto now = goro::clock::now();
    if (deadline_due(now, timeout, cn.read_deadline)) cn.c.set_read_deadline(now + timeout);
}

void server::write_timeout(connection& cn, goro::clock::duration timeout) {
    auto now = goro::clock::now();
    if (deadline_due(now, timeout, cn.write_deadline)) cn.c.set_write_deadline(now + timeout);
}

// Writes the pending responses in one call.
void server::flush(connection& cn) {
    if (cn.out.empty()) return;
    write_timeout(cn, cfg_.write_timeout);
    cn.c.write_all(cn.out);
    cn.out.clear();
}

// Closing a socket with unread input makes the kernel send a reset, and a
// reset may destroy a response the client has not read yet (a 400 answered
// in the middle of a pipeline, say). So: send our end of stream first, and
// read and drop what still comes until the client closes, for a short while.
// net/http does the same (closeWriteAndWait).
void server::linger(connection& cn) {
    cn.state = conn_state::idle;  // shutdown may cut this short
    cn.c.shutdown_write();
    read_timeout(cn, cfg_.linger_timeout);
    char sink[4096];
    std::size_t total = 0;
    while (total < max_body_bytes) {
        std::size_t n = cn.c.read(sink, sizeof sink);
        if (n == 0) return;
        total += n;
    }
}

bool server::shutdown(const goro::context& ctx) {
    {
        std::lock_guard lock(mu_);
        if (!shutting_down_.exchange(true)) {
            stop_.close();  // wakes serve() if it is backing off
            ln_.close();    // serve() returns; new clients are refused
        }
        for (connection* cn : conns_)
            if (cn->state.load() == conn_state::idle) cn->c.close();  // its goroutine ends
    }
    // Connections answering a request see shutting_down_ when they finish it,
    // answer with "Connection: close" and close. Wait for them, but not past
    // ctx's deadline.
    auto all_closed = goro::make_chan<goro::unit>();
    goro::go([this, all_closed] {
        conn_goroutines_.wait();
        all_closed.close();
    });
    bool graceful = true;
    goro::select(goro::recv_case(all_closed),
                 goro::recv_case(ctx.done(), [&](auto) { graceful = false; }));
    if (!graceful) {
        std::lock_guard lock(mu_);
        for (connection* cn : conns_) cn->c.close();
    }
    all_closed.recv();
    return graceful;
}

server::counts server::connection_counts() {
    counts n;
    std::lock_guard lock(mu_);
    for (connection* cn : conns_) (cn->state.load() == conn_state::idle ? n.idle : n.active)++;
    return n;
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

// TODO(offload): replace with goro::signal_context(goro::background(),
// {SIGTERM, SIGINT}) from goro/signal.hpp once it is delivered under
// ThreadSanitizer too: as of offload e020de3, this program built with TSan
// and using it never sees a SIGTERM (its handler is deferred by TSan, as
// described below). This is a minimal stand-in.
//
// Returns a context cancelled at the first SIGTERM or SIGINT (Go's
// signal.NotifyContext). The signals are blocked in every thread, and one
// plain thread takes them with sigwait and cancels the context: no signal
// handler, which could do almost nothing safely (and which ThreadSanitizer
// runs only when the interrupted thread next enters a call it intercepts: a
// worker asleep in the kernel may never do so). A second signal ends the
// process at once, as the default action would.
// Requires: called before the runtime starts its threads (they inherit the
// blocked mask), i.e. before goro::run; once per process.
std::pair<goro::context, goro::cancel_func> notify_on_shutdown_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (int err = pthread_sigmask(SIG_BLOCK, &signals, nullptr))
        throw std::system_error(err, std::generic_category(), "pthread_sigmask");

    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::thread([signals, cancel = cancel] {
        int sig = 0;
        sigwait(&signals, &sig);
        cancel();  // a cancel_func may be called from any thread
        sigwait(&signals, &sig);
        std::_Exit(128 + sig);
    }).detach();
    return {ctx, cancel};
}

// Serves on srv until ctx is done, then shuts down gracefully, giving
// requests in flight up to `grace` to finish. The whole life of a server.
void serve_until(server& srv, const goro::context& ctx, goro::clock::duration grace) {
    auto shut_down = goro::make_chan<goro::unit>();
    goro::go([&srv, ctx, grace, shut_down] {
        ctx.done().recv();
        auto [deadline_ctx, cancel] = goro::with_timeout(goro::background(), grace);
        if (!srv.shutdown(deadline_ctx))
            std::fprintf(stderr, "http_server: shutdown deadline passed; connections closed\n");
        cancel();
        shut_down.close();
    });
    srv.serve();       // returns as soon as the listener is closed
    shut_down.recv();  // the connections are done
}

// ---------------------------------------------------------------------------
// Self-check: clients in goroutines against a server in the same process
// ---------------------------------------------------------------------------

struct check_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(bool ok, const std::string& what) {
    if (!ok) throw check_failure(what);
}

// A parsed response, as a client sees it.
struct client_response {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;

    std::string header(std::string_view name) const {
        for (auto& [n, v] : headers)
            if (n == name) return v;
        return {};
    }
};

// A test client: a connection plus what it has read and not consumed.
class client {
  public:
    explicit client(const std::string& address) : c_(goro::net::dial("tcp", address, 5s)) {
        c_.set_deadline(goro::clock::now() + 20s);  // a hang fails the check, not the test run
    }

    void send(std::string_view bytes) { c_.write_all(bytes); }

    // Reads one response; a HEAD response has no body whatever its length.
    client_response receive(bool head_request = false) {
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            check(fill(), "connection closed before a response head");
        std::string_view head(buf_.data(), end + 2);
        client_response r;
        std::string_view status_line = head.substr(0, head.find("\r\n"));
        check(status_line.starts_with("HTTP/1.1 ") && status_line.size() >= 12,
              "bad status line: " + std::string(status_line));
        r.status = std::stoi(std::string(status_line.substr(9, 3)));
        head.remove_prefix(status_line.size() + 2);
        while (!head.empty()) {
            std::string_view line = head.substr(0, head.find("\r\n"));
            head.remove_prefix(line.size() + 2);
            std::size_t colon = line.find(':');
            check(colon != std::string_view::npos, "bad header line");
            std::string name(line.substr(0, colon));
            for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
            r.headers.emplace_back(name, std::string(trim(line.substr(colon + 1))));
        }
        std::size_t length = 0;
        check(parse_content_length(r.header("content-length"), length), "no Content-Length");
        if (head_request) length = 0;
        buf_.erase(0, end + 4);
        while (buf_.size() < length) check(fill(), "connection closed inside a body");
        r.body = buf_.substr(0, length);
        buf_.erase(0, length);
        return r;
    }

    // True if the server closed the connection (end of stream or reset)
    // with nothing more sent.
    bool closed_by_server() {
        try {
            return buf_.empty() && !fill();
        } catch (const std::system_error& e) {
            return e.code() == std::errc::connection_reset;
        }
    }

    goro::net::conn& conn() { return c_; }

  private:
    bool fill() {
        char tmp[4096];
        std::size_t n = c_.read(tmp, sizeof tmp);
        buf_.append(tmp, n);
        return n > 0;
    }
    goro::net::conn c_;
    std::string buf_;
};

std::string get(std::string_view path, std::string_view extra_headers = "") {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) +
           "\r\n";
}

void expect_hello(const client_response& r) {
    check(r.status == 200, "GET /: status " + std::to_string(r.status));
    check(r.body == hello_body, "GET /: body " + r.body);
    check(r.header("content-type") == text_type, "GET /: content type");
    check(!r.header("date").empty(), "GET /: no Date");
}

void expect_json(const client_response& r) {
    check(r.status == 200, "GET /json: status " + std::to_string(r.status));
    check(r.body == json_body, "GET /json: body " + r.body);
    check(r.header("content-type") == "application/json", "GET /json: content type");
}

// Several requests on one keep-alive connection, both endpoints.
void check_keep_alive(const std::string& addr) {
    client c(addr);
    for (int i = 0; i < 10; ++i) {
        c.send(get(i % 2 ? "/json" : "/"));
        client_response r = c.receive();
        i % 2 ? expect_json(r) : expect_hello(r);
        check(r.header("connection").empty(), "keep-alive: unexpected Connection header");
    }
}

void check_errors(const std::string& addr) {
    {  // 404 keeps the connection; query strings are not part of the path
        client c(addr);
        c.send(get("/nope"));
        client_response r = c.receive();
        check(r.status == 404 && r.body == "404 page not found\n", "404");
        c.send(get("/?q=1"));
        expect_hello(c.receive());
    }
    {  // malformed request: 400, then the server closes
        client c(addr);
        c.send("GARBAGE\r\n\r\n");
        check(c.receive().status == 400, "malformed request: not 400");
        check(c.closed_by_server(), "malformed request: connection left open");
    }
    {  // HTTP/1.1 without Host: 400
        client c(addr);
        c.send("GET / HTTP/1.1\r\n\r\n");
        check(c.receive().status == 400, "missing Host: not 400");
    }
    {  // space before the colon: 400
        client c(addr);
        c.send("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
        check(c.receive().status == 400, "space before colon: not 400");
    }
    {  // HTTP/2.0 in an HTTP/1 request line: 505
        client c(addr);
        c.send("GET / HTTP/2.0\r\nHost: x\r\n\r\n");
        check(c.receive().status == 505, "HTTP/2.0: not 505");
    }
    {  // a header larger than the head limit: 431, closed
        client c(addr);
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n");
        check(c.receive().status == 431, "huge header: not 431");
        check(c.closed_by_server(), "huge header: connection left open");
    }
    {  // chunked body: 501
        client c(addr);
        c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        check(c.receive().status == 501, "chunked: not 501");
    }
    {  // POST with a body: 405, the body is skipped, the connection goes on
        client c(addr);
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get("/json"));
        client_response r = c.receive();
        check(r.status == 405 && r.header("allow") == "GET, HEAD", "POST: not 405 with Allow");
        expect_json(c.receive());
    }
    {  // a body over the limit: 413
        client c(addr);
        c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n");
        check(c.receive().status == 413, "huge body: not 413");
    }
}

void check_connection_handling(const std::string& addr) {
    {  // pipelining: three requests in one write, three responses in order
        client c(addr);
        c.send(get("/") + get("/json") + get("/missing"));
        expect_hello(c.receive());
        expect_json(c.receive());
        check(c.receive().status == 404, "pipelined 404");
    }
    {  // HEAD: the length of the GET, no body
        client c(addr);
        c.send("HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n" + get("/"));
        client_response r = c.receive(true);
        check(r.status == 200 && r.header("content-length") == std::to_string(json_body.size()),
              "HEAD");
        expect_hello(c.receive());
    }
    {  // HTTP/1.1 with Connection: close
        client c(addr);
        c.send(get("/", "Connection: close\r\n"));
        client_response r = c.receive();
        expect_hello(r);
        check(r.header("connection") == "close", "Connection: close not echoed");
        check(c.closed_by_server(), "Connection: close: connection left open");
    }
    {  // HTTP/1.0 closes by default
        client c(addr);
        c.send("GET / HTTP/1.0\r\n\r\n");
        expect_hello(c.receive());
        check(c.closed_by_server(), "HTTP/1.0: connection left open");
    }
    {  // HTTP/1.0 with keep-alive stays open
        client c(addr);
        for (int i = 0; i < 3; ++i) {
            c.send("GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            client_response r = c.receive();
            expect_json(r);
            check(r.header("connection") == "keep-alive", "HTTP/1.0 keep-alive not echoed");
        }
    }
    {  // a client vanishing before its response: the server carries on
        for (int i = 0; i < 20; ++i) {
            client c(addr);
            c.send(get("/json") + get("/json") + get("/json"));
            c.conn().close();
        }
        client c(addr);
        c.send(get("/"));
        expect_hello(c.receive());
    }
}

// Against a server with short timeouts: an idle connection is closed after
// idle_timeout, and a request trickling in byte by byte (slowloris) is cut off
// at request_timeout.
void check_timeouts(const std::string& addr, const server_config& cfg) {
    {
        client c(addr);
        c.send(get("/"));
        expect_hello(c.receive());
        auto start = goro::clock::now();
        check(c.closed_by_server(), "idle connection not closed");
        auto waited = goro::clock::now() - start;
        check(waited >= cfg.idle_timeout - 50ms && waited < cfg.idle_timeout + 5s,
              "idle timeout not honoured");
    }
    {
        client c(addr);
        std::string request = get("/", "X-Slow: " + std::string(200, 'z') + "\r\n");
        auto start = goro::clock::now();
        std::atomic<bool> gone{false};
        goro::wait_group trickler;
        trickler.go([&] {
            try {
                for (char ch : request) {
                    if (gone) return;
                    c.send(std::string_view(&ch, 1));
                    goro::sleep_for(20ms);
                }
            } catch (const std::system_error&) {  // the server closed first: expected
            }
        });
        bool closed = c.closed_by_server();
        gone = true;
        trickler.wait();
        auto waited = goro::clock::now() - start;
        check(closed, "slowloris: connection not closed");
        check(waited < cfg.request_timeout + 5s, "slowloris: not cut off in time");
    }
}

// Graceful shutdown through the real path (a SIGTERM to this process):
// idle keep-alive connections are closed, a request in flight is finished
// and told "Connection: close", new connections are refused, serve returns.
void check_shutdown(server& srv, const std::string& addr, goro::chan<goro::unit> served) {
    constexpr int idle_clients = 200;
    std::vector<std::unique_ptr<client>> idle;
    for (int i = 0; i < idle_clients; ++i) {
        idle.push_back(std::make_unique<client>(addr));
        idle.back()->send(get("/"));
        expect_hello(idle.back()->receive());
    }
    // In flight: the head is in, half of the body is not.
    client busy(addr);
    busy.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    auto until = goro::clock::now() + 10s;
    for (;;) {
        server::counts n = srv.connection_counts();
        if (n.active == 1 && n.idle == idle_clients) break;
        check(goro::clock::now() < until, "shutdown: connections never settled");
        goro::sleep_for(1ms);
    }

    kill(getpid(), SIGTERM);

    for (auto& c : idle) check(c->closed_by_server(), "shutdown: idle connection left open");
    bool refused = false;
    try {
        client late(addr);
    } catch (const std::system_error& e) {
        refused = e.code() == std::errc::connection_refused;
    }
    check(refused, "shutdown: new connection not refused");
    check(served.try_recv().empty(), "shutdown: server done before its request in flight");

    busy.send("67890");
    client_response r = busy.receive();
    check(r.status == 405 && r.header("connection") == "close",
          "shutdown: in-flight request not answered with Connection: close");
    check(busy.closed_by_server(), "shutdown: in-flight connection left open");
    served.recv();  // serve_until returned
}

int self_check(const goro::context& signalled, const goro::cancel_func& stop_signals) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line out as it is printed
    return goro::run([&]() -> int {
        int failures = 0;
        auto report = [&](const char* name, auto&& fn) {
            try {
                fn();
                std::printf("ok    %s\n", name);
            } catch (const std::exception& e) {
                std::printf("FAIL  %s: %s\n", name, e.what());
                ++failures;
            }
        };

        // The server under test, with the default configuration.
        server srv(goro::net::listen("tcp", "127.0.0.1:0"));
        std::string addr = srv.address();
        std::printf("listening on %s\n", addr.c_str());
        auto served = goro::make_chan<goro::unit>();
        goro::go([&srv, signalled, served] {
            serve_until(srv, signalled, 5s);
            served.close();
        });

        // A second one with short timeouts.
        server_config short_cfg;
        short_cfg.idle_timeout = 300ms;
        short_cfg.request_timeout = 300ms;
        server quick(goro::net::listen("tcp", "127.0.0.1:0"), short_cfg);
        auto quick_served = goro::make_chan<goro::unit>();
        goro::go([&quick, quick_served] {
            quick.serve();
            quick_served.close();
        });

        // Clients in parallel, each a goroutine; errgroup keeps the first failure.
        report("keep-alive, both endpoints, 8 clients at once", [&] {
            goro::errgroup g;
            for (int i = 0; i < 8; ++i) g.go([&addr] { check_keep_alive(addr); });
            g.wait();
        });
        report("errors: 404, 400, 405, 413, 431, 501, 505", [&] { check_errors(addr); });
        report("pipelining, HEAD, Connection: close, HTTP/1.0, vanishing clients",
               [&] { check_connection_handling(addr); });
        report("idle timeout and slowloris", [&] { check_timeouts(quick.address(), short_cfg); });

        auto [ctx, cancel] = goro::with_timeout(goro::background(), 5s);
        report("shutdown of an idle server", [&, ctx = ctx] {
            bool graceful = quick.shutdown(ctx);
            quick_served.recv();
            check(graceful, "not graceful");
        });
        cancel();
        report("graceful shutdown on SIGTERM", [&] { check_shutdown(srv, addr, served); });
        // Whatever failed above, srv's goroutines must be done before srv is
        // destroyed: cancelling the signal context shuts it down if the
        // signal did not.
        stop_signals();
        served.recv();

        std::printf(failures ? "self-check: %d failure(s)\n" : "self-check: ok\n", failures);
        return failures ? 1 : 0;
    });
}

}  // namespace

int main(int argc, char** argv) {
    // A write to a connection the client has closed must fail with EPIPE, not
    // kill the process with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);

    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        std::fprintf(stderr, "usage: %s [HOST:PORT]   (no argument: self-check)\n", argv[0]);
        return 2;
    }
    // Before goro::run starts the worker threads.
    auto [signalled, stop_signals] = notify_on_shutdown_signals();
    if (argc < 2) return self_check(signalled, stop_signals);

    std::string listen_address = argv[1];
    return goro::run([&, signalled = signalled]() -> int {
        try {
            server srv(goro::net::listen("tcp", listen_address));
            std::printf("listening on %s\n", srv.address().c_str());
            std::fflush(stdout);
            serve_until(srv, signalled, 5s);
            return 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "http_server: %s\n", e.what());
            return 1;
        }
    });
}
