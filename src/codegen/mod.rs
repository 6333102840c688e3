//! Cranelift: the schedule's fused kernels to machine code. The only module that names Cranelift.
//!
//! One JIT module per compiled cell holds every kernel; dropping [`Kernels`] frees its code (a
//! dropped `JITModule` would otherwise leak its pages on purpose). Kernels never trap and never
//! call out, so no panic can cross a JIT frame.

mod annotate;
mod kernel;
pub mod math;
pub mod softmax;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cranelift::codegen::ir::UserFuncName;
use cranelift::codegen::settings;
use cranelift::jit::{JITBuilder, JITModule};
use cranelift::module::{Linkage, Module, default_libcall_names};
use cranelift::prelude::*;

use crate::ir::Graph;
use crate::schedule::Schedule;

/// A compiled kernel: `fn(ptrs, strides, rows, width)`; see `kernel.rs` for the contract.
pub type KernelFn = unsafe extern "C" fn(*const *mut f32, *const i64, i64, i64);

/// What to keep besides the code.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Keep each kernel's Cranelift IR, annotated with the equations.
    pub clif: bool,
    /// Keep each kernel's disassembly.
    pub asm: bool,
}

/// The compiled kernels of one cell, in the schedule's order.
pub struct Kernels {
    module: Mutex<Option<JITModule>>,
    pub fns: Vec<KernelFn>,
    pub code_bytes: Vec<usize>,
    pub clif: Vec<String>,
    pub asm: Vec<String>,
    /// Time spent in Cranelift (building IR, optimising, emitting, linking).
    pub compile_time: Duration,
    /// Whether the code uses fused multiply-add.
    pub fma: bool,
}

impl Drop for Kernels {
    fn drop(&mut self) {
        if let Some(module) = self.module.get_mut().ok().and_then(Option::take) {
            // SAFETY: the kernel pointers die with `self`; nothing can call them afterwards.
            unsafe { module.free_memory() };
        }
    }
}

/// A Cranelift ISA for this machine: host features detected, position-dependent code.
pub(crate) fn host_isa(verify: bool) -> Result<std::sync::Arc<dyn cranelift::codegen::isa::TargetIsa>, String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| format!("cranelift flag {k}: {e}"));
    set(&mut flags, "opt_level", "none")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "enable_verifier", if verify { "true" } else { "false" })?;
    let isa = cranelift::native::builder().map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?;
    isa.finish(settings::Flags::new(flags)).map_err(|e| format!("cannot configure Cranelift: {e}"))
}

/// Compiles every kernel of `schedule` (whose nodes are in `g`).
pub fn compile(g: &Graph, schedule: &Schedule, opts: Options) -> Result<Kernels, String> {
    let start = Instant::now();
    let isa = host_isa(cfg!(debug_assertions))?;
    let fma = isa.has_native_fma();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for ty in [ptr, ptr, types::I64, types::I64] {
        sig.params.push(AbiParam::new(ty));
    }
    let mut ids = vec![];
    let (mut code_bytes, mut clif, mut asm) = (vec![], vec![], vec![]);
    for (k, spec) in schedule.kernels.iter().enumerate() {
        let id = module
            .declare_function(&format!("k{k}_{}", spec.name), Linkage::Local, &sig)
            .map_err(|e| format!("cannot declare kernel {}: {e}", spec.name))?;
        ctx.func.signature = sig.clone();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let notes = kernel::emit(&mut ctx.func, &mut fctx, module.target_config(), g, spec, fma);
        if opts.clif {
            clif.push(annotate::clif_text(&ctx.func, g, spec, &notes));
        }
        ctx.set_disasm(opts.asm);
        module.define_function(id, &mut ctx).map_err(|e| format!("Cranelift rejected kernel {}: {e:?}", spec.name))?;
        let compiled = ctx.compiled_code().ok_or("Cranelift produced no code")?;
        code_bytes.push(compiled.code_buffer().len());
        if opts.asm {
            asm.push(compiled.vcode.clone().unwrap_or_default());
        }
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    module.finalize_definitions().map_err(|e| format!("cannot link kernels: {e}"))?;
    let fns = ids
        .iter()
        .map(|&id| {
            let p = module.get_finalized_function(id);
            // SAFETY: every kernel was built with exactly this signature.
            unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
        })
        .collect();
    Ok(Kernels { module: Mutex::new(Some(module)), fns, code_bytes, clif, asm, compile_time: start.elapsed(), fma })
}
