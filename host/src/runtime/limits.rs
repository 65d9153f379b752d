//! Memory cap per call, over everything the call's store holds: all its linear memories and
//! tables together, and a bounded number of instances, memories and tables. It remembers
//! whether the guest ran into it, so a failed allocation is reported as "out of memory" rather
//! than as an anonymous trap.

use wasmtime::{Enabled, PoolingAllocationConfig, ResourceLimiter};

/// Table elements of the whole store, all tables together.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// A component built from one language's toolchain has a handful of each; a store with more
/// is trying to multiply its allowance.
const MAX_INSTANCES: usize = 32;
const MAX_MEMORIES: usize = 8;
const MAX_TABLES: usize = 32;

/// Instances, memories and tables alive at once, across all plugins: well above the calls that
/// `max_concurrent_calls` admits (every way into a plugin takes a permit) plus the describes
/// of a load. A memory slot only reserves address space until it is used.
const POOL_SLOTS: u32 = 1000;
/// Every running call needs a stack; creating the pool protects a guard page per stack, which
/// each start pays for, so there are only as many as calls may run at once, plus the loads.
const POOL_STACKS: u32 = crate::config::MAX_CONCURRENT_CALLS + 32;
/// What a slot keeps of a call's linear memory, reset in place (only the pages the call
/// dirtied, where the kernel can say which) instead of unmapped: a call then starts without
/// page faults. A typical call dirties a few hundred KiB; every slot ever used keeps up to
/// this much resident, so a burst of 96 calls leaves at most 96 MiB behind.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
const KEEP_RESIDENT_STACK_BYTES: usize = 128 << 10;

/// Every call instantiates its plugin afresh. From a pool, that reuses a slot the plugin ran in
/// before (its memory image already mapped, its stack already allocated) rather than mapping
/// and unmapping memory, stacks and tables on every call, each unmap a TLB shootdown across
/// the process's threads.
pub fn instance_pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_SLOTS)
        .total_core_instances(POOL_SLOTS)
        .total_memories(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .total_stacks(POOL_STACKS)
        .max_memories_per_module(MAX_MEMORIES as u32)
        .max_tables_per_module(MAX_TABLES as u32)
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .async_stack_keep_resident(KEEP_RESIDENT_STACK_BYTES)
        .pagemap_scan(Enabled::Auto);
    pool
}

pub struct MemoryCap {
    max_bytes: usize,
    /// Bytes of every linear memory of the store together.
    used_bytes: usize,
    used_table_elements: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    pub fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap {
            max_bytes,
            used_bytes: 0,
            used_table_elements: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.used_bytes - current.min(self.used_bytes)).saturating_add(desired);
        if total > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        self.used_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.used_table_elements - current.min(self.used_table_elements))
            .saturating_add(desired);
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.used_table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn the_cap_covers_every_memory_of_the_store_together() {
        let mut cap = MemoryCap::new(16 * MIB);
        // Two memories of 10 MiB each: the second would take the store to 20 MiB.
        assert!(cap.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(!cap.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(cap.exceeded);
        // Growing the first memory counts only the growth.
        assert!(cap.memory_growing(10 * MIB, 16 * MIB, None).unwrap());
        assert!(!cap.memory_growing(0, 64 * 1024, None).unwrap());
    }

    #[test]
    fn tables_share_one_element_budget() {
        let mut cap = MemoryCap::new(16 * MIB);
        assert!(cap.table_growing(0, 60_000, None).unwrap());
        assert!(!cap.table_growing(0, 60_000, None).unwrap());
    }
}
