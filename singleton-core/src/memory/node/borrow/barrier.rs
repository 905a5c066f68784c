//! The asymmetric fence: a light half for the reader, a heavy half for the writer. Together they
//! order like two `SeqCst` fences.
//!
//! On Linux the heavy half is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which runs a full
//! barrier on every CPU that runs a thread of this process; the light half is then only a
//! compiler fence. This is how folly's hazard pointers and liburcu make the read side free; the
//! `haphazard` crate does the same. On Linux where `membarrier` is missing or refused, readers do
//! not mark at all (`with_instance` takes a handle); on other systems, on Linux architectures
//! other than x86-64 and AArch64, and under loom and miri, both halves are `SeqCst` fences.
//!
//! The system call goes through the C library's `syscall(2)`, which the standard library links
//! already, declared here rather than through the `libc` crate: one function and one number per
//! architecture were all this crate took from `libc`, whose build script and compilation were
//! about 1.3 s of a user's clean build (`bash .ci/build-cost`).

#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"), not(loom), not(miri)))]
mod imp {
    use std::ffi::c_long;
    use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const MEMBARRIER: u8 = 1;
    const FENCES: u8 = 2;
    static STRATEGY: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// `__NR_membarrier` (`asm/unistd_64.h` on x86-64, `asm-generic/unistd.h` on AArch64).
    #[cfg(target_arch = "x86_64")]
    const SYS_MEMBARRIER: c_long = 324;
    #[cfg(target_arch = "aarch64")]
    const SYS_MEMBARRIER: c_long = 283;

    const CMD_QUERY: c_long = 0;
    const CMD_PRIVATE_EXPEDITED: c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: c_long = 1 << 4;

    extern "C" {
        /// `syscall(2)` of glibc and musl: the number, then the call's own arguments.
        fn syscall(number: c_long, ...) -> c_long;
    }

    fn membarrier(cmd: c_long) -> c_long {
        // SAFETY: `syscall` is the C library's, with the signature declared above; `membarrier`
        // takes two integer arguments (a command and flags) and touches no memory of ours.
        unsafe { syscall(SYS_MEMBARRIER, cmd, 0 as c_long) }
    }

    /// Decides, once per process, which fences are used: `true` for `membarrier`.
    pub(crate) fn init() -> bool {
        let s = STRATEGY.load(Ordering::Acquire);
        if s != UNKNOWN {
            return s == MEMBARRIER;
        }
        let supported = membarrier(CMD_QUERY);
        let s = if supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
        {
            MEMBARRIER
        } else {
            FENCES
        };
        // The first decision stands, even if a probe on another thread answered otherwise:
        // every reader and writer must use the same one.
        match STRATEGY.compare_exchange(UNKNOWN, s, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => s == MEMBARRIER,
            Err(first) => first == MEMBARRIER,
        }
    }

    /// Readers mark only where the heavy half is `membarrier`: elsewhere on Linux (an old
    /// kernel, a sandbox that refuses it) `with_instance` takes a handle, whose atomic
    /// read-modify-write costs what a `SeqCst` fence in the reader would, and the reader's
    /// fence stays a compiler fence, with no flag to test on the hot path.
    pub(crate) fn readers_may_mark() -> bool {
        init()
    }

    /// A compiler fence: the CPU's half is run by the writer's `membarrier`.
    #[inline(always)]
    pub(crate) fn light() {
        compiler_fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        if init() {
            // Registered above, so this cannot fail: it is a bug in the kernel if it does.
            let done = membarrier(CMD_PRIVATE_EXPEDITED);
            assert_eq!(done, 0, "membarrier failed after it was registered");
        } else {
            fence(Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The number is the kernel's: the `libc` crate (a test dependency only) agrees, and the
        /// query, where the kernel answers it, lists only `membarrier` commands.
        #[test]
        fn the_system_call_is_membarrier() {
            assert_eq!(SYS_MEMBARRIER, libc::SYS_membarrier);
            let commands = membarrier(CMD_QUERY);
            if commands >= 0 {
                assert_eq!(commands & !0xffff, 0, "not a membarrier command mask: {commands:#x}");
                assert_ne!(commands & CMD_PRIVATE_EXPEDITED, 0, "{commands:#x}");
            }
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(loom),
    not(miri)
)))]
mod imp {
    use crate::memory::sync::{fence, Ordering};

    pub(crate) fn readers_may_mark() -> bool {
        true
    }

    #[inline(always)]
    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
    }
}

pub(crate) use imp::{heavy, light, readers_may_mark};
