// goro/sync.hpp — the sync package: mutex, rw_mutex, once, once_func and
// once_value, cond, semaphore and wait_group. Each also has its own header.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include "goro/cond.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/once_func.hpp"
#include "goro/rw_mutex.hpp"
#include "goro/semaphore.hpp"
#include "goro/wait_group.hpp"
