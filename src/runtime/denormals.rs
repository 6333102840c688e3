//! Denormals flushed to zero while a model trains: a state or gradient decaying toward zero
//! passes through subnormal floats, which x86 CPUs compute in microcode, tens of times slower
//! than normal ones. [`FlushDenormals`] sets FTZ (flush results to zero) and DAZ (read
//! subnormal inputs as zero) in this thread's MXCSR and restores the previous mode when dropped;
//! `pool::run` hands the caller's mode to the worker threads of every parallel region, so a
//! whole training step runs flushed.
//!
//! Training uses it (`train::lm`); `cellc eval` and the interpreter comparisons do not, so they
//! compute IEEE results down to the smallest subnormal. PyTorch does not flush by default:
//! `cellc bench --denormals keep` measures cellc without it.

/// MXCSR bits: flush-to-zero (15) and denormals-are-zero (6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// This thread's floating-point control word (0 where there is none to read).
pub fn mode() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores the 32-bit control register into `csr`, a valid u32.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// Sets this thread's floating-point control word (as [`mode`] read it).
pub fn set_mode(csr: u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: ldmxcsr loads a control word read by `mode` (or one with only FTZ/DAZ changed):
    // no reserved bit is set, so it cannot fault.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = csr;
}

/// Flushes denormals on this thread until dropped (see the module doc).
pub struct FlushDenormals {
    saved: u32,
}

impl FlushDenormals {
    /// Flushing when `on`; otherwise the mode is left as it is (a guard that does nothing).
    pub fn new(on: bool) -> FlushDenormals {
        let saved = mode();
        #[cfg(target_arch = "x86_64")]
        if on {
            set_mode(saved | FTZ_DAZ);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = on;
        FlushDenormals { saved }
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        set_mode(self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    fn half_of_smallest_normal() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(0.5)
    }

    #[test]
    fn flushing_turns_subnormal_results_into_zero_here_and_in_parallel_regions() {
        let plain = half_of_smallest_normal();
        assert!(plain > 0.0 && !plain.is_normal(), "without flushing the result is subnormal");
        {
            let _flush = FlushDenormals::new(true);
            assert_eq!(half_of_smallest_normal(), 0.0);
            // Worker threads of the pool run with the caller's mode.
            let seen: Vec<std::sync::atomic::AtomicU32> = (0..3).map(|_| Default::default()).collect();
            super::super::pool::run(3, &|i| {
                seen[i].store(half_of_smallest_normal().to_bits(), std::sync::atomic::Ordering::Relaxed);
            });
            assert!(seen.iter().all(|s| s.load(std::sync::atomic::Ordering::Relaxed) == 0));
        }
        assert_eq!(half_of_smallest_normal().to_bits(), plain.to_bits(), "the old mode is back");
        let _keep = FlushDenormals::new(false);
        assert_eq!(half_of_smallest_normal().to_bits(), plain.to_bits());
    }
}
