//! `CK_INFO`, `CK_SLOT_INFO`, `CK_TOKEN_INFO` and mechanism information, built in safe Rust
//! (they are plain data) for the ABI to copy out.

use cryptoki_sys::{CK_INFO, CK_MECHANISM_INFO, CK_SLOT_INFO, CK_TOKEN_INFO, CK_ULONG, CK_VERSION};

use crate::ck::*;
use crate::error::{Error, Result};
use crate::fail;
use crate::module::{Module, Slot, TokenState};

/// A token state learned within this time (while the token kept answering) is reported
/// without a new request.
const STATE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Manufacturer shown for the library, slots and tokens.
pub const MANUFACTURER: &str = "Tresor";

/// Copies `s` into a blank-padded fixed field (truncated at a character boundary).
pub fn pad(dst: &mut [u8], s: &str) {
    dst.fill(b' ');
    let mut end = s.len().min(dst.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    dst[..end].copy_from_slice(&s.as_bytes()[..end]);
}

fn library_version() -> CK_VERSION {
    let parse = |s: &str| s.parse::<u8>().unwrap_or(0);
    CK_VERSION {
        major: parse(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: parse(env!("CARGO_PKG_VERSION_MINOR")),
    }
}

/// `C_GetInfo` for the interface of Cryptoki version `major.minor`.
pub fn info(major: u8, minor: u8) -> CK_INFO {
    let mut i = CK_INFO {
        cryptokiVersion: CK_VERSION { major, minor },
        flags: 0,
        libraryVersion: library_version(),
        ..CK_INFO::default()
    };
    pad(&mut i.manufacturerID, MANUFACTURER);
    pad(&mut i.libraryDescription, "Tresor PKCS#11 library");
    i
}

/// `C_GetSlotInfo`.
pub fn slot_info(slot: &Slot) -> CK_SLOT_INFO {
    let mut i = CK_SLOT_INFO {
        flags: if slot.configured() {
            cryptoki_sys::CKF_TOKEN_PRESENT
        } else {
            0
        },
        hardwareVersion: CK_VERSION { major: 1, minor: 0 },
        firmwareVersion: library_version(),
        ..CK_SLOT_INFO::default()
    };
    pad(
        &mut i.slotDescription,
        &format!("Tresor slot {} ({})", slot.id, slot.partition),
    );
    pad(&mut i.manufacturerID, MANUFACTURER);
    i
}

/// A stable 16-character serial number for a partition (FNV-1a of its name, hex).
pub fn serial(partition: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in partition.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn ck(v: u64) -> CK_ULONG {
    v as CK_ULONG
}

/// The `CKF_*_PIN_*` flags of `failures` wrong PINs out of `max`.
fn pin_flags(failures: u32, max: u32, count_low: u64, final_try: u64, locked: u64) -> u64 {
    if max > 0 && failures >= max {
        locked
    } else if failures > 0 && failures + 1 == max {
        count_low | final_try
    } else if failures > 0 {
        count_low
    } else {
        0
    }
}

/// The token flags of a PIN state.
pub fn token_flags(s: &TokenState) -> u64 {
    let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
    if s.user_pin_initialized {
        flags |= CKF_USER_PIN_INITIALIZED;
    }
    flags |= pin_flags(
        s.user_failures,
        s.max_failures,
        CKF_USER_PIN_COUNT_LOW,
        CKF_USER_PIN_FINAL_TRY,
        CKF_USER_PIN_LOCKED,
    );
    flags |= pin_flags(
        s.so_failures,
        s.max_failures,
        CKF_SO_PIN_COUNT_LOW,
        CKF_SO_PIN_FINAL_TRY,
        CKF_SO_PIN_LOCKED,
    );
    flags
}

/// `C_GetTokenInfo`: one `TokenStatus` request (unless the state was learned within the last
/// second) gives the PIN flags and shows whether the token can be reached
/// (`CKR_TOKEN_NOT_PRESENT` when no configured target answers).
pub fn token_info(module: &Module, slot: &Slot) -> Result<CK_TOKEN_INFO> {
    if !slot.configured() {
        fail!(CKR_TOKEN_NOT_PRESENT, "slot {} has no credentials", slot.id);
    }
    let state = match slot.token_state(STATE_FRESH) {
        Ok(s) => s,
        Err(e) if e.rv == CKR_DEVICE_REMOVED => {
            return Err(Error::new(CKR_TOKEN_NOT_PRESENT, e.message))
        }
        Err(e) => return Err(e),
    };
    let (sessions, rw) = module.session_counts(slot.id);
    let mut i = CK_TOKEN_INFO {
        flags: ck(token_flags(&state)),
        ulMaxSessionCount: cryptoki_sys::CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions as CK_ULONG,
        ulMaxRwSessionCount: cryptoki_sys::CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: 64,
        ulMinPinLen: 4,
        ulTotalPublicMemory: ck(CK_UNAVAILABLE_INFORMATION),
        ulFreePublicMemory: ck(CK_UNAVAILABLE_INFORMATION),
        ulTotalPrivateMemory: ck(CK_UNAVAILABLE_INFORMATION),
        ulFreePrivateMemory: ck(CK_UNAVAILABLE_INFORMATION),
        hardwareVersion: CK_VERSION { major: 1, minor: 0 },
        firmwareVersion: library_version(),
        ..CK_TOKEN_INFO::default()
    };
    pad(&mut i.label, &slot.partition);
    pad(&mut i.manufacturerID, MANUFACTURER);
    pad(&mut i.model, "Tresor HSM");
    pad(&mut i.serialNumber, &serial(&slot.partition));
    pad(&mut i.utcTime, "");
    Ok(i)
}

/// `C_GetMechanismList`.
pub fn mechanism_list(slot: &Slot) -> Result<Vec<u64>> {
    Ok(slot.mechanisms()?.iter().map(|m| m.mechanism).collect())
}

/// `C_GetMechanismInfo`.
pub fn mechanism_info(slot: &Slot, ty: u64) -> Result<CK_MECHANISM_INFO> {
    let m = slot
        .mechanisms()?
        .iter()
        .find(|m| m.mechanism == ty)
        .ok_or_else(|| Error::new(CKR_MECHANISM_INVALID, format!("mechanism {ty:#x}")))?;
    Ok(CK_MECHANISM_INFO {
        ulMinKeySize: ck(m.min_key_size),
        ulMaxKeySize: ck(m.max_key_size),
        flags: ck(m.flags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_serial() {
        let mut b = [0u8; 8];
        pad(&mut b, "abc");
        assert_eq!(&b, b"abc     ");
        pad(&mut b, "0123456789");
        assert_eq!(&b, b"01234567");
        pad(&mut b, "aaaaaaa\u{e9}");
        assert_eq!(&b, b"aaaaaaa ");
        assert_eq!(serial("P1").len(), 16);
        assert_eq!(serial("P1"), serial("P1"));
    }

    #[test]
    fn pin_state_flags() {
        let mut s = TokenState {
            user_pin_initialized: true,
            so_failures: 0,
            user_failures: 0,
            max_failures: 10,
        };
        let base = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
        assert_eq!(token_flags(&s), base | CKF_USER_PIN_INITIALIZED);
        s.user_pin_initialized = false;
        s.so_failures = 1;
        assert_eq!(token_flags(&s), base | CKF_SO_PIN_COUNT_LOW);
        s.so_failures = 9;
        assert_eq!(
            token_flags(&s),
            base | CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY
        );
        s.so_failures = 10;
        s.user_failures = 12;
        assert_eq!(
            token_flags(&s),
            base | CKF_SO_PIN_LOCKED | CKF_USER_PIN_LOCKED
        );
    }
}
