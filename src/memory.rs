//! glibc allocator tuning. The exporter's heap has a few large short-lived
//! buffers (the rendered exposition, list pages, agent replies) next to a
//! long-lived set of small objects; glibc's defaults keep the freed large
//! buffers and freed pages inside its arenas, so RSS drifts far above the
//! live heap. No-ops on other platforms and libcs.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    pub(crate) fn tune() {
        // SAFETY: glibc's documented tuning call, made before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }

    pub(crate) fn trim() {
        // SAFETY: documented glibc call; thread-safe (it takes each arena's lock).
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Call first thing in `main`, before any thread starts. Buffers from
/// 128 KiB up are mmapped, so they go back to the OS when freed. glibc's
/// default raises this threshold after the first such free, and the freed
/// buffers of every rebuild then stay in the heap: RSS was 1.9x the live
/// heap at 1,000 nodes.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::tune();
}

/// Returns free pages inside the heap to the OS (`malloc_trim`). Called
/// after each rebuild and each agent round, when the previous snapshot or
/// pools were just dropped; costs one walk over the arenas' free chunks.
pub(crate) fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::trim();
}
