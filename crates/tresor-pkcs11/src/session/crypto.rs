//! Sign / verify (and the 3.2 signature-first verification), encrypt / decrypt and digest:
//! single-part, and multi-part buffered until `…Final`.

use tresor_proto::{Mechanism, Request, Response, Secret};
use zeroize::Zeroizing;

use super::*;

/// A decryption already streamed by dual-function updates in a mode whose plaintext is as
/// long as its ciphertext: the rest's length is known, and an empty rest needs no request.
fn length_preserved(op: &Op) -> bool {
    op.streamed
        && matches!(
            op.mech,
            Mechanism::AesEcb {} | Mechanism::AesCbc { .. } | Mechanism::AesCtr { .. }
        )
}

impl Session {
    // ---- sign / verify ------------------------------------------------------------------

    /// `C_SignInit`.
    pub fn sign_init(&self, m: &RawMechanism, key: u64) -> Result<()> {
        start(&mut self.state.lock().sign, m, key, Usage::Sign)
    }

    /// `C_Sign` (`data`) or `C_SignFinal` (`None`).
    pub fn sign(&self, data: Option<&[u8]>, cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        deliver(
            &mut st.sign,
            data,
            cap,
            |op, _| self.slot.known_len(op.key, op.ty),
            |op, input| self.sign_request(op.key, op.ty, &op.mech, input, op.auth.as_ref()),
        )
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&self, part: &[u8]) -> Result<()> {
        append(&mut self.state.lock().sign, part)
    }

    /// `C_VerifyInit`.
    pub fn verify_init(&self, m: &RawMechanism, key: u64) -> Result<()> {
        start(&mut self.state.lock().verify, m, key, Usage::Verify)
    }

    /// `C_Verify` (`data`) or `C_VerifyFinal` (`None`); always ends the operation.
    pub fn verify(&self, data: Option<&[u8]>, signature: &[u8]) -> Result<()> {
        let op = {
            let mut st = self.state.lock();
            let op = st
                .verify
                .as_ref()
                .ok_or_else(|| Error::new(CKR_OPERATION_NOT_INITIALIZED, "no verification"))?;
            if data.is_some() && op.parts {
                fail!(
                    CKR_OPERATION_ACTIVE,
                    "a multi-part verification is under way"
                );
            }
            st.verify.take()
        };
        let Some(op) = op else {
            fail!(CKR_OPERATION_NOT_INITIALIZED, "no verification");
        };
        let input: &[u8] = data.unwrap_or(&op.data);
        if input.len() > MAX_DATA {
            fail!(CKR_DATA_LEN_RANGE, "more than {MAX_DATA} bytes");
        }
        self.verify_request(op.key, &op.mech, input, signature)
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&self, part: &[u8]) -> Result<()> {
        append(&mut self.state.lock().verify, part)
    }

    /// `C_VerifySignatureInit` (3.2): the signature comes first.
    pub fn verify_signature_init(
        &self,
        m: &RawMechanism,
        key: u64,
        signature: &[u8],
    ) -> Result<()> {
        let mut st = self.state.lock();
        if st.verify_signature.is_some() {
            fail!(CKR_OPERATION_ACTIVE, "a signature verification is active");
        }
        let mut slot = None;
        start(&mut slot, m, key, Usage::Verify)?;
        if let Some(op) = slot {
            st.verify_signature = Some((op, signature.to_vec()));
        }
        Ok(())
    }

    /// `C_VerifySignature` (`data`) or `C_VerifySignatureFinal` (`None`).
    pub fn verify_signature(&self, data: Option<&[u8]>) -> Result<()> {
        let (op, sig) = {
            let mut st = self.state.lock();
            match &st.verify_signature {
                None => fail!(CKR_OPERATION_NOT_INITIALIZED, "no signature verification"),
                Some((op, _)) if data.is_some() && op.parts => {
                    fail!(
                        CKR_OPERATION_ACTIVE,
                        "a multi-part verification is under way"
                    )
                }
                Some(_) => {}
            }
            match st.verify_signature.take() {
                Some(x) => x,
                None => fail!(CKR_OPERATION_NOT_INITIALIZED, "no signature verification"),
            }
        };
        let input: &[u8] = data.unwrap_or(&op.data);
        self.verify_request(op.key, &op.mech, input, &sig)
    }

    /// `C_VerifySignatureUpdate`.
    pub fn verify_signature_update(&self, part: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        let mut op = st.verify_signature.take();
        let r = match op.as_mut() {
            Some((o, _)) => {
                let mut tmp = Some(Op {
                    key: o.key,
                    ty: o.ty,
                    mech: o.mech.clone(),
                    data: std::mem::take(&mut o.data),
                    parts: o.parts,
                    streamed: false,
                    stash: None,
                    auth: None,
                });
                let r = append(&mut tmp, part);
                if let Some(t) = tmp {
                    o.data = t.data;
                    o.parts = true;
                } else {
                    op = None;
                }
                r
            }
            None => Err(Error::new(
                CKR_OPERATION_NOT_INITIALIZED,
                "no signature verification",
            )),
        };
        st.verify_signature = op;
        r
    }

    // ---- encrypt / decrypt ----------------------------------------------------------------

    /// `C_EncryptInit`.
    pub fn encrypt_init(&self, m: &RawMechanism, key: u64) -> Result<()> {
        start(&mut self.state.lock().encrypt, m, key, Usage::Encrypt)
    }

    /// `C_Encrypt` (`data`) or `C_EncryptFinal` (`None`; everything comes out at the end).
    pub fn encrypt(&self, data: Option<&[u8]>, cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        deliver(
            &mut st.encrypt,
            data,
            cap,
            |op, n| {
                mechanism::encrypt_len(&op.mech, n).or_else(|| self.slot.known_len(op.key, op.ty))
            },
            |op, input| self.encrypt_request(op.key, op.ty, &op.mech, input),
        )
    }

    /// `C_EncryptUpdate`: buffered; returns no output until `C_EncryptFinal`.
    pub fn encrypt_update(&self, part: &[u8]) -> Result<()> {
        append(&mut self.state.lock().encrypt, part)
    }

    /// `C_DecryptInit`.
    pub fn decrypt_init(&self, m: &RawMechanism, key: u64) -> Result<()> {
        start(&mut self.state.lock().decrypt, m, key, Usage::Decrypt)
    }

    /// `C_Decrypt` (`data`) or `C_DecryptFinal` (`None`).
    pub fn decrypt(&self, data: Option<&[u8]>, cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        deliver(
            &mut st.decrypt,
            data,
            cap,
            |op, n| length_preserved(op).then_some(n),
            |op, input| {
                if length_preserved(op) && input.is_empty() {
                    // Everything was decrypted by dual-function updates: nothing is left.
                    return Ok(Zeroizing::new(Vec::new()));
                }
                self.decrypt_request(op.key, &op.mech, input, op.auth.as_ref())
            },
        )
    }

    /// `C_DecryptUpdate`: buffered.
    pub fn decrypt_update(&self, part: &[u8]) -> Result<()> {
        append(&mut self.state.lock().decrypt, part)
    }

    // ---- digest ---------------------------------------------------------------------------

    /// `C_DigestInit`.
    pub fn digest_init(&self, m: &RawMechanism) -> Result<()> {
        start(&mut self.state.lock().digest, m, 0, Usage::Digest)
    }

    /// `C_Digest` (`data`) or `C_DigestFinal` (`None`); lengths are known locally.
    pub fn digest(&self, data: Option<&[u8]>, cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        deliver(
            &mut st.digest,
            data,
            cap,
            |op, _| match &op.mech {
                Mechanism::Digest { hash } => Some(mechanism::hash_len(*hash)),
                _ => None,
            },
            |op, input| {
                let Mechanism::Digest { hash } = &op.mech else {
                    fail!(CKR_MECHANISM_INVALID, "not a digest");
                };
                match self.slot.call(&Request::Digest {
                    hash: *hash,
                    data: Secret::from_slice(input),
                })? {
                    Response::Digest { digest } => Ok(Zeroizing::new(digest)),
                    other => Err(unexpected(&other)),
                }
            },
        )
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, part: &[u8]) -> Result<()> {
        append(&mut self.state.lock().digest, part)
    }

    /// `C_DigestKey`: a key's value never leaves the HSM to be digested here.
    pub fn digest_key(&self, key: u64) -> Result<()> {
        let mut st = self.state.lock();
        if st.digest.is_none() {
            fail!(CKR_OPERATION_NOT_INITIALIZED, "no digest");
        }
        st.digest = None;
        key_id(key)?;
        fail!(
            CKR_KEY_INDIGESTIBLE,
            "key values are not digested outside the HSM"
        )
    }
}
