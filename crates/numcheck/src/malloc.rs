//! A bound on glibc malloc's arenas for the long-running server.
//!
//! glibc gives a thread that finds the heap busy an arena of its own, up to eight per core,
//! and memory freed in one arena is not reused by threads of another. The server's threads
//! (API, workers, blocking lookups, SQLite connections) each hold on to theirs: on the
//! 10M-profile benchmark the peak RSS was 431–492 MiB with the default and 190–234 MiB with
//! at most two arenas, at the same speed (bench/LOG.md, 2026-12-07). The limit is a glibc
//! tunable read when the process starts, so `serve` re-executes itself once with it set in
//! `GLIBC_TUNABLES` (same process id, same arguments). An operator's own
//! `glibc.malloc.arena_max` is kept as it is.

/// Re-executes the process with `glibc.malloc.arena_max` set (one arena per core, at least
/// two), unless it already is. Returns only when it was set before or the exec failed.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const TUNABLES: &str = "GLIBC_TUNABLES";
        let current = std::env::var(TUNABLES).unwrap_or_default();
        if current.contains("glibc.malloc.arena_max") {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let arenas = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let limit = format!("glibc.malloc.arena_max={arenas}");
        let value = if current.is_empty() {
            limit
        } else {
            format!("{current}:{limit}")
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        let error = command.args(args).env(TUNABLES, value).exec();
        // Still here: the exec failed; run with glibc's default arenas.
        eprintln!(
            "numcheck: could not restart with a bound on malloc arenas ({error}); going on without"
        );
    }
}
