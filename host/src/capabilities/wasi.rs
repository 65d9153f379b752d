//! An empty WASI, for components whose toolchain imports it whether or not the plugin uses it
//! (componentize-py's Python interpreter imports files, environment, clocks, random and
//! sockets). carport's own plugins import no WASI and are linked without it.
//!
//! What it gives: no preopened directory, no environment variable, no argument, stdin closed,
//! stdout and stderr discarded, TCP, UDP and name lookup refused, and clocks that tell no more
//! than carport's `clock` import does: wall-clock and monotonic time in whole milliseconds, so
//! the interpreter cannot time anything finer. Randomness is the host's (Python seeds its hash
//! tables with it). Sleeping and polling still end with the call's deadline, which the runtime
//! enforces on the whole call.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::CallState;

const MILLISECOND: Duration = Duration::from_millis(1);

/// One call's WASI state, made at the call's first WASI import.
pub struct EmptyWasi {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl EmptyWasi {
    fn new() -> EmptyWasi {
        let ctx = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .wall_clock(MillisecondWallClock)
            .monotonic_clock(MillisecondMonotonicClock(Instant::now()))
            .build();
        EmptyWasi {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self
            .wasi
            .get_or_insert_with(|| Mutex::new(EmptyWasi::new()))
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// Adds WASI 0.2 to a linker that already holds carport's world.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

/// Whether a component imports any WASI interface.
pub fn imported_by(import_names: impl IntoIterator<Item = String>) -> bool {
    import_names
        .into_iter()
        .any(|name| name.starts_with("wasi:"))
}

struct MillisecondWallClock;

impl HostWallClock for MillisecondWallClock {
    fn resolution(&self) -> Duration {
        MILLISECOND
    }

    fn now(&self) -> Duration {
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_millis(since_epoch.as_millis() as u64)
    }
}

struct MillisecondMonotonicClock(Instant);

impl HostMonotonicClock for MillisecondMonotonicClock {
    fn resolution(&self) -> u64 {
        MILLISECOND.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64 * 1_000_000
    }
}
