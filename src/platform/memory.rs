//! Giving memory back to the OS after the few jobs that need a lot of it at once.
//!
//! The allocator (mimalloc, set in the binary) keeps a thread's freed pages for a while before
//! returning them, so that the request path does not fault the same pages in again and again. A
//! job that allocates megabytes on a blocking thread — an argon2 hash (19 MiB), a usage batch —
//! would leave those pages resident on that thread until it allocates again, and the blocking pool
//! has many threads: the resident set then grows with the number of threads that ever ran such a
//! job. Such jobs call [`release_thread_memory`] when they finish.

/// Returns the calling thread's free pages to the OS now. Cheap when there is nothing to return;
/// a no-op when mimalloc is not the process's allocator (it has no pages of its own then).
pub fn release_thread_memory() {
    // SAFETY: mi_collect only walks and frees the calling thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
