//! Configuration: libconfig syntax, `primus.cfg`, `.secrets.cfg` and where they are found.

pub mod libconfig;
pub mod lookup;
pub mod primus;
pub mod secrets;
mod suggest;
