// context/errc.cpp — the "goro" error category.
#include <string>

#include "goro/errors.hpp"

namespace goro {

namespace {

class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "goro"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::canceled:
                return "context canceled";
            case errc::deadline_exceeded:
                return "context deadline exceeded";
            case errc::closed:
                return "use of closed network connection";
            case errc::unexpected_eof:
                return "unexpected EOF";
        }
        return "unknown goro error";
    }
};

}  // namespace

const std::error_category& goro_category() noexcept {
    static const category* c = new category;  // never destroyed: used during exit
    return *c;
}

}  // namespace goro
