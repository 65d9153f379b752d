//! Memory cap per call, remembering whether the guest ran into it so a failed allocation can
//! be reported as "out of memory" rather than as an anonymous trap.

use wasmtime::ResourceLimiter;

const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct MemoryCap {
    max_bytes: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    pub fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap {
            max_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        if !allowed {
            self.exceeded = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
