// goro/goro.hpp — everything goro: goroutines, channels, select, time, sync,
// context and errgroup. One header per area is available too.
#pragma once

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/errgroup.hpp"
#include "goro/errors.hpp"
#include "goro/io.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/stats.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
#include "goro/trace.hpp"
#include "goro/unit.hpp"
#include "goro/wait_group.hpp"
