//! The token as a whole: `C_InitToken` (re-initialisation by the security officer) and the
//! token status behind `C_GetTokenInfo`'s PIN flags.

use std::sync::atomic::Ordering;

use tresor_store::Mutation;

use super::context::{Context, UserType};
use super::partition::is_conflict;
use super::store_err;
use crate::audit::EntryContent;
use crate::error::{vendor, Error, Result, Rv};
use crate::object::ObjectId;

/// How often a re-initialisation that conflicted with another writer is rebuilt.
const INIT_RETRIES: u32 = 30;

/// Length of a PKCS#11 token label (`CK_TOKEN_INFO.label`, `C_InitToken`'s `pLabel`).
pub const LABEL_LEN: usize = 32;

/// A partition's token label: its name, cut to 32 bytes at a character boundary and padded
/// with blanks (what `C_GetTokenInfo` shows).
pub fn token_label(name: &str) -> [u8; LABEL_LEN] {
    let mut label = [b' '; LABEL_LEN];
    let mut end = name.len().min(LABEL_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    label[..end].copy_from_slice(&name.as_bytes()[..end]);
    label
}

/// What `C_GetTokenInfo` needs to know about the PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStatus {
    /// The user PIN is set (`CKF_USER_PIN_INITIALIZED`).
    pub user_pin_initialized: bool,
    /// Consecutive wrong SO PINs.
    pub so_failures: u32,
    /// Consecutive wrong user PINs.
    pub user_failures: u32,
    /// Wrong PINs after which a PIN is locked.
    pub max_failures: u32,
}

impl Context {
    /// `C_InitToken`: re-initialise the partition's token as its security officer.
    ///
    /// * `label` must be the token label (the partition's name, blank-padded to 32 bytes):
    ///   partitions are named by the operator, so a different label is `CKR_ARGUMENTS_BAD`
    ///   and changes nothing (no PIN attempt is counted).
    /// * This context must be neither logged in nor hold session objects
    ///   (`CKR_SESSION_EXISTS`): the application closes its sessions first, as PKCS#11 says.
    /// * The SO PIN is verified with the lockout of `C_Login` (a wrong PIN counts).
    /// * Then, in one audited commit: every object of the partition is destroyed, the user PIN
    ///   is cleared (`CKF_USER_PIN_INITIALIZED` false until `C_InitPIN`) with its failure
    ///   count, and the token generation moves on, so that every other context of the
    ///   partition loses its login and session objects at its next call (on this node at once,
    ///   on other nodes within their `sync_interval`, or sooner when they read the partition).
    ///
    /// Returns how many (token) objects were destroyed.
    pub async fn init_token(&self, so_pin: &[u8], label: &[u8]) -> Result<usize> {
        self.check_live()?;
        if label != token_label(&self.part.name) {
            tracing::info!(partition = %self.part.name, context = self.id, "C_InitToken refused: the label is not the partition's name");
            return Err(Error::new(
                Rv::ArgumentsBad,
                format!(
                    "the token label is the partition name {:?} (32 bytes, blank-padded); partitions are named with `tresor admin`",
                    self.part.name
                ),
            ));
        }
        if self.logged_in().is_some() || !self.session_objects.read().is_empty() {
            return Err(Error::new(
                Rv::SessionExists,
                "this application is logged in or holds session objects: close its sessions first",
            ));
        }
        self.check_pin_counted(
            UserType::SecurityOfficer,
            so_pin,
            "token.init.auth",
            "token.init.auth.fail",
        )
        .await?;
        let mut attempt = 0;
        loop {
            match self.init_token_commit().await {
                Err(e) if is_conflict(&e) && attempt < INIT_RETRIES => attempt += 1,
                Ok(n) => {
                    tracing::warn!(partition = %self.part.name, context = self.id, objects = n, "token re-initialised by the security officer (C_InitToken)");
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The one commit of [`init_token`](Self::init_token), built on the stored object set.
    async fn init_token_commit(&self) -> Result<usize> {
        let engine = &self.engine;
        // Objects created through other nodes since this one read the partition count too.
        self.part.sync(engine).await?;
        let objects: Vec<(ObjectId, i64)> = {
            let mut v: Vec<_> = self
                .part
                .versions
                .read()
                .iter()
                .map(|(o, v)| (*o, *v))
                .collect();
            v.sort_unstable();
            v
        };
        let mut mutations: Vec<Mutation> = objects
            .iter()
            .map(|(oid, version)| Mutation::DeleteObject {
                partition_id: self.part.id,
                object_id: *oid,
                expected_version: *version,
            })
            .collect();
        mutations.push(Mutation::SetPinFailures {
            partition_id: self.part.id,
            so_failures: 0,
            user_failures: 0,
        });
        let changes = objects.iter().map(|(o, v)| (*o, *v, 0)).collect();
        let entry = EntryContent::now(
            format!("so/{}", self.id),
            "token.init",
            None,
            serde_json::json!({
                "objects_destroyed": objects.len(),
                "user_pin": "cleared",
            })
            .to_string(),
        );
        let mut generation = 0;
        self.part
            .commit_with(engine, mutations, vec![entry], Some(changes), |r| {
                r.user_pin = None;
                r.generation += 1;
                generation = r.generation;
                Ok(true)
            })
            .await?;
        self.part.generation.fetch_max(generation, Ordering::AcqRel);
        Ok(objects.len())
    }

    /// The PIN state of the token (`C_GetTokenInfo`): no login needed, as in PKCS#11.
    pub async fn token_status(&self) -> Result<TokenStatus> {
        self.check_live()?;
        let engine = &self.engine;
        // The PINs may have been changed by another process or node.
        self.part.sync(engine).await?;
        let row = engine
            .store
            .partition(self.part.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::new(Rv::Vendor(vendor::USER_NOT_FOUND), "partition was deleted")
            })?;
        let user_pin_initialized = self.part.writer.lock().await.record.user_pin.is_some();
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Ok(TokenStatus {
            user_pin_initialized,
            so_failures: count(row.so_failures),
            user_failures: count(row.user_failures),
            max_failures: count(engine.config.max_pin_failures),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_blank_padded_name() {
        assert_eq!(&token_label("P1")[..4], b"P1  ");
        assert_eq!(token_label("P1").len(), 32);
        let long = "a".repeat(40);
        assert_eq!(token_label(&long), [b'a'; 32]);
        // Cut at a character boundary.
        let name = format!("{}é", "b".repeat(31));
        let l = token_label(&name);
        assert_eq!(&l[..31], "b".repeat(31).as_bytes());
        assert_eq!(l[31], b' ');
    }
}
