// sync/wait_lock.cpp — the table of wait locks (see wait_lock.hpp).
#include "sync/wait_lock.hpp"

namespace goro::detail {

padded_wait_lock wait_locks[wait_lock_count];

}  // namespace goro::detail
