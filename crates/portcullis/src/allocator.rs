//! The allocator's settings for `run`. mimalloc keeps the pages a burst freed for its
//! `purge_delay` (1 s by default) and gives them back to the kernel only when a later
//! allocation or free looks at the delay, which an idle gateway never does: after 9,000
//! connections were answered and left idle, ~1 KiB per connection of the burst's memory stayed
//! resident (`bench/run.sh` phase D: 4,308 B per connection, 3,333 B with the purge at once).
//! A purge at once costs ~0.03 `madvise` calls per request under steady load
//! (`strace -c -f` over 24,000 proxied requests).
//!
//! mimalloc reads its options from the environment when the process loads, before `main`, and
//! the crate has no safe setter, so `run` starts itself again with `MIMALLOC_PURGE_DELAY=0`
//! unless the operator chose a value. `exec` keeps the PID, the arguments and the open files.

/// The mimalloc option this module sets.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// For `portcullis run`, replaces the process with itself plus the allocator setting (the
/// operator's own `MIMALLOC_PURGE_DELAY` wins). Returns only when nothing was to be done or
/// the `exec` failed, which leaves mimalloc's defaults: slower memory return, nothing else.
pub(crate) fn tune_for_run() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;

        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_default();
        let is_run = std::env::args_os().nth(1).is_some_and(|a| a == "run");
        if !is_run || std::env::var_os(PURGE_DELAY).is_some() {
            return;
        }
        let err = std::process::Command::new("/proc/self/exe").arg0(argv0).args(args).env(PURGE_DELAY, "0").exec();
        eprintln!(
            "portcullis: could not restart with {PURGE_DELAY}=0 ({err}); idle memory returns to the system later"
        );
    }
}
