//! The PKCS#11 numbers the engine speaks (classes, key types, attributes, mechanisms) and
//! Tresor's vendor attributes, as `u64`: the shared `tresor-ck` crate, under the engine's
//! historical path.

pub use tresor_ck::*;
