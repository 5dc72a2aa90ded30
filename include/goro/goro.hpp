// goro/goro.hpp — everything goro: goroutines, channels, select, time, sync,
// context, errgroup, descriptor waits and sockets, blocking calls and signals.
// One header per area is available too.
#pragma once

#include "goro/detail/require_cxx20.hpp"  // first: a readable error before C++20-only code

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/errgroup.hpp"
#include "goro/errors.hpp"
#include "goro/io.hpp"
#include "goro/net.hpp"
#include "goro/pool.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/signal.hpp"
#include "goro/singleflight.hpp"
#include "goro/stats.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
#include "goro/trace.hpp"
#include "goro/unit.hpp"
#include "goro/version.hpp"
#include "goro/wait_group.hpp"
