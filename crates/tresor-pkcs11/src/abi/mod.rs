//! The C ABI: the only `unsafe` code of Tresor. It turns pointers into safe values, calls the
//! safe layer, writes results back, maps every error to its `CK_RV` and never lets a panic
//! cross into the host (`CKR_GENERAL_ERROR`).
//!
//! Exported symbols: `C_GetFunctionList` (the 2.40 table), `C_GetInterfaceList` and
//! `C_GetInterface` (3.2, 3.0 and 2.40 tables). Every other entry point is reached through
//! those tables only.
//!
//! Process state lives behind one pointer, set once per process id: a child after `fork()`
//! sees a pointer made by its parent, treats the library as not initialised, and a
//! `C_Initialize` there builds a fresh state without touching the parent's locks,
//! connections or sessions (they are leaked in the child, never dropped).
// `CK_ULONG` is `u64` on LP64 targets but not everywhere; the casts at this boundary are
// deliberate.
#![allow(clippy::unnecessary_cast, clippy::missing_safety_doc)]
#![allow(non_snake_case)]

mod entry;
mod params;
mod ptr;
mod tables;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock};

use cryptoki_sys::{CK_RV, CK_ULONG};
use parking_lot::RwLock;

use crate::ck::*;
use crate::error::{Error, Result};
use crate::log::{self as plog, Logger};
use crate::module::Module;

pub use tables::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};

/// The library state of one process.
#[derive(Debug)]
struct Holder {
    pid: u32,
    module: RwLock<Option<Arc<Module>>>,
    /// The logger of the `log` block (set at `C_Initialize`, cleared at `C_Finalize`).
    logger: RwLock<Option<Arc<Logger>>>,
}

/// Whether the logger of the process (if any) logs every call: read on every call, so a plain
/// flag (no process-id check, no lock). A child after `fork()` may inherit it set; it then only
/// looks for a logger it does not have.
static EVERY_CALL: AtomicBool = AtomicBool::new(false);

/// Points to a leaked `Holder` (never freed), or is NULL before the first `C_Initialize`.
static HOLDER: AtomicPtr<Holder> = AtomicPtr::new(std::ptr::null_mut());

/// This process's holder; `None` before initialisation or when the holder is a parent's.
fn holder() -> Option<&'static Holder> {
    let p = HOLDER.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: `HOLDER` only ever holds pointers from `Box::into_raw` that are never freed.
    let h = unsafe { &*p };
    (h.pid == std::process::id()).then_some(h)
}

/// This process's holder, created if absent or inherited from a parent process.
fn holder_or_create() -> &'static Holder {
    loop {
        let cur = HOLDER.load(Ordering::Acquire);
        if let Some(h) = holder() {
            return h;
        }
        let fresh = Box::into_raw(Box::new(Holder {
            pid: std::process::id(),
            module: RwLock::new(None),
            logger: RwLock::new(None),
        }));
        match HOLDER.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just created by `Box::into_raw`, now owned by `HOLDER` forever. The
            // previous holder (a parent's) is deliberately leaked.
            Ok(_) => return unsafe { &*fresh },
            Err(_) => {
                // Another thread installed one: drop ours and use theirs.
                // SAFETY: `fresh` came from `Box::into_raw` and was never published.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
    }
}

/// The initialised library of this process.
fn module() -> Result<Arc<Module>> {
    holder()
        .and_then(|h| h.module.read().clone())
        .ok_or_else(|| Error::new(CKR_CRYPTOKI_NOT_INITIALIZED, "C_Initialize was not called"))
}

fn trace_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("TRESOR_PKCS11_TRACE").is_some_and(|v| v != "0"))
}

/// Start logging as the module's `log` block says (and to standard error with
/// `TRESOR_PKCS11_TRACE`).
fn start_logging(h: &Holder, m: &Module) {
    let logger = Logger::open(m.log_config(), trace_enabled()).map(Arc::new);
    EVERY_CALL.store(
        logger.as_ref().is_some_and(|l| l.every_call()),
        Ordering::Relaxed,
    );
    *h.logger.write() = logger;
}

/// Stop logging (after `C_Finalize`).
fn stop_logging(h: &Holder) {
    EVERY_CALL.store(false, Ordering::Relaxed);
    *h.logger.write() = None;
}

/// Log `what` at `level` for `name`; before `C_Initialize` (no logger yet) errors still reach
/// standard error with `TRESOR_PKCS11_TRACE`.
#[track_caller]
fn log_line(level: u8, name: &str, what: &dyn std::fmt::Display) {
    let at = std::panic::Location::caller();
    match holder().and_then(|h| h.logger.read().clone()) {
        Some(l) if l.wants(level) => l.write(level, name, &what.to_string(), at),
        Some(_) => {}
        None if trace_enabled() && level < plog::DEBUG => {
            eprintln!("tresor-pkcs11: {name}: {what}")
        }
        None => {}
    }
}

/// Runs an entry point: `Ok` is `CKR_OK`, an error its `CK_RV`, a panic `CKR_GENERAL_ERROR`.
fn guard(name: &str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    let every = EVERY_CALL.load(Ordering::Relaxed);
    if every {
        log_line(plog::DEBUG, name, &"called");
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            if every {
                log_line(plog::DEBUG, name, &"CKR_OK");
            }
            CKR_OK as CK_RV
        }
        Ok(Err(e)) => {
            log_line(plog::level_of(e.rv), name, &e);
            e.rv as CK_RV
        }
        Err(_) => {
            log_line(
                plog::CRIT,
                name,
                &"panic caught; answered CKR_GENERAL_ERROR",
            );
            CKR_GENERAL_ERROR as CK_RV
        }
    }
}

fn u(v: CK_ULONG) -> u64 {
    v as u64
}
