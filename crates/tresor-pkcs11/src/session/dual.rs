//! The dual-function updates (PKCS#11 3.2 §5.14): `C_DigestEncryptUpdate`,
//! `C_SignEncryptUpdate`, `C_DecryptDigestUpdate` and `C_DecryptVerifyUpdate`, over the same
//! buffered operations as their single-function counterparts.
//!
//! * Encrypt + digest / sign: the same plaintext part goes to both operations. Encryption is
//!   buffered like `C_EncryptUpdate` (its output comes at `C_EncryptFinal`), so these calls
//!   return no output and cost no round trip.
//! * Decrypt + digest / verify: the standard passes the plaintext *that the call returns* to the
//!   digest or verification. So these calls decrypt what they can at once (one request) and
//!   return it: every whole block for `CKM_AES_ECB`, `CKM_AES_CBC` and `CKM_AES_CTR` (the next
//!   IV or counter block is carried forward in the library); all whole blocks but the last for
//!   `CKM_AES_CBC_PAD` (decrypted as the CBC blocks they are; the last block may hold padding:
//!   it comes out of `C_DecryptFinal`, the standard's caveat); nothing for AEAD and RSA mechanisms, whose plaintext is released only
//!   by `C_DecryptFinal` after the whole ciphertext (and tag) was checked. What `C_DecryptFinal`
//!   returns is not passed on: the application digests or verifies it itself, as the standard
//!   says for padding mechanisms.
//!
//! Both operations must be active (`CKR_OPERATION_NOT_INITIALIZED` otherwise, nothing
//! changes). A length query or a short buffer consumes nothing; any other error ends both
//! operations.

use super::*;

/// The operation that shares its data with an encryption or decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partner {
    /// The active digest (`C_DigestEncryptUpdate`, `C_DecryptDigestUpdate`).
    Digest,
    /// The active signature (`C_SignEncryptUpdate`).
    Sign,
    /// The active verification (`C_DecryptVerifyUpdate`).
    Verify,
}

fn partner(st: &mut State, p: Partner) -> &mut Option<Op> {
    match p {
        Partner::Digest => &mut st.digest,
        Partner::Sign => &mut st.sign,
        Partner::Verify => &mut st.verify,
    }
}

/// How many bytes of `total` buffered ciphertext can be decrypted now (the plaintext has the
/// same length): whole blocks of the streamable modes, all but a last (possibly padded) block
/// for CBC-PAD, nothing for the others.
fn streamable(m: &Mechanism, total: usize) -> usize {
    match m {
        Mechanism::AesEcb {} | Mechanism::AesCbc { .. } | Mechanism::AesCtr { .. } => {
            total / 16 * 16
        }
        Mechanism::AesCbcPad { .. } => total.saturating_sub(1) / 16 * 16,
        _ => 0,
    }
}

/// The mechanism that decrypts the ciphertext following `done` (whose last block is `last`).
fn advance(m: &mut Mechanism, done: &[u8]) {
    let blocks = (done.len() / 16) as u128;
    match m {
        Mechanism::AesCbc { iv } | Mechanism::AesCbcPad { iv } => {
            if let Some(last) = done.len().checked_sub(16).map(|i| &done[i..]) {
                *iv = last.to_vec();
            }
        }
        Mechanism::AesCtr { iv, .. } => {
            if let Ok(b) = <[u8; 16]>::try_from(iv.as_slice()) {
                // The node checked that these blocks fit the counter space: no overflow.
                *iv = u128::from_be_bytes(b)
                    .wrapping_add(blocks)
                    .to_be_bytes()
                    .to_vec();
            }
        }
        _ => {}
    }
}

impl Session {
    /// `C_DigestEncryptUpdate` / `C_SignEncryptUpdate`: `part` goes to the encryption and to
    /// the partner; the encrypted output comes at `C_EncryptFinal`, so this returns none.
    pub fn encrypt_with(&self, with: Partner, part: &[u8], cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        let other = partner(&mut st, with).as_ref().map(|o| o.data.len());
        let (Some(enc), Some(other)) = (st.encrypt.as_ref().map(|o| o.data.len()), other) else {
            fail!(
                CKR_OPERATION_NOT_INITIALIZED,
                "the encryption and the {with:?} operation must both be active"
            );
        };
        if cap.is_none() {
            // A length query: no output now, and nothing is consumed.
            return Ok(Out::Len(0));
        }
        if enc.max(other) + part.len() > MAX_DATA {
            st.encrypt = None;
            *partner(&mut st, with) = None;
            fail!(
                CKR_DATA_LEN_RANGE,
                "more than {MAX_DATA} bytes in one operation"
            );
        }
        append(&mut st.encrypt, part)?;
        append(partner(&mut st, with), part)?;
        Ok(Out::Data(Zeroizing::new(Vec::new())))
    }

    /// `C_DecryptDigestUpdate` / `C_DecryptVerifyUpdate`: decrypts what can be decrypted now
    /// (see the module docs), returns it and passes it to the partner.
    pub fn decrypt_with(&self, with: Partner, part: &[u8], cap: Option<usize>) -> Result<Out> {
        let mut st = self.state.lock();
        let other = partner(&mut st, with).as_ref().map(|o| o.data.len());
        let (Some((key, mech, buffered)), Some(other)) = (
            st.decrypt
                .as_ref()
                .map(|d| (d.key, d.mech.clone(), d.data.len())),
            other,
        ) else {
            fail!(
                CKR_OPERATION_NOT_INITIALIZED,
                "the decryption and the {with:?} operation must both be active"
            );
        };
        let total = buffered.saturating_add(part.len());
        let n = streamable(&mech, total);
        match cap {
            None => return Ok(Out::Len(n)),
            Some(c) if c < n => return Ok(Out::TooSmall(n)),
            _ => {}
        }
        let end_both = |st: &mut State| {
            st.decrypt = None;
            *partner(st, with) = None;
        };
        if total > MAX_DATA || other + n > MAX_DATA {
            end_both(&mut st);
            fail!(
                CKR_DATA_LEN_RANGE,
                "more than {MAX_DATA} bytes in one operation"
            );
        }
        if n == 0 {
            append(&mut st.decrypt, part)?;
            return Ok(Out::Data(Zeroizing::new(Vec::new())));
        }
        let mut input = Zeroizing::new(Vec::with_capacity(total));
        if let Some(d) = st.decrypt.as_ref() {
            input.extend_from_slice(&d.data);
        }
        input.extend_from_slice(part);
        // CBC-PAD's leading blocks carry no padding: they are plain CBC blocks (the same
        // computation); the padded last block stays for C_DecryptFinal.
        let now = match &mech {
            Mechanism::AesCbcPad { iv } => Mechanism::AesCbc { iv: iv.clone() },
            m => m.clone(),
        };
        let auth = st.decrypt.as_ref().and_then(|d| d.auth.clone());
        let plain = match self.decrypt_request(key, &now, &input[..n], auth.as_ref()) {
            Ok(p) if p.len() == n => p,
            Ok(p) => {
                end_both(&mut st);
                fail!(
                    CKR_DEVICE_ERROR,
                    "{} bytes of plaintext for {n} bytes of ciphertext",
                    p.len()
                );
            }
            Err(e) => {
                end_both(&mut st);
                return Err(e);
            }
        };
        if let Some(op) = st.decrypt.as_mut() {
            advance(&mut op.mech, &input[..n]);
            op.data = Zeroizing::new(input[n..].to_vec());
            op.parts = true;
            op.streamed = true;
            op.stash = None;
        }
        append(partner(&mut st, with), &plain)?;
        Ok(Out::Data(plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_can_be_decrypted_at_once() {
        let cbc = Mechanism::AesCbc { iv: vec![0; 16] };
        let pad = Mechanism::AesCbcPad { iv: vec![0; 16] };
        assert_eq!(streamable(&cbc, 15), 0);
        assert_eq!(streamable(&cbc, 33), 32);
        assert_eq!(streamable(&Mechanism::AesEcb {}, 32), 32);
        assert_eq!(streamable(&pad, 0), 0);
        assert_eq!(streamable(&pad, 16), 0, "the last block may be padding");
        assert_eq!(streamable(&pad, 32), 16);
        assert_eq!(streamable(&pad, 40), 32);
        let gcm = mechanism::gcm(&[0; 12], b"", 128).unwrap_or(Mechanism::AesEcb {});
        assert_eq!(streamable(&gcm, 64), 0, "AEAD plaintext waits for the tag");
        assert_eq!(streamable(&Mechanism::RsaPkcs {}, 256), 0);
    }

    #[test]
    fn the_chaining_value_is_carried_forward() {
        let done: Vec<u8> = (0u8..48).collect();
        let mut cbc = Mechanism::AesCbc { iv: vec![0; 16] };
        advance(&mut cbc, &done);
        assert_eq!(
            cbc,
            Mechanism::AesCbc {
                iv: (32u8..48).collect()
            }
        );
        let mut iv = [0u8; 16];
        iv[15] = 0xfe;
        let mut ctr = Mechanism::AesCtr {
            iv: iv.to_vec(),
            counter_bits: 32,
        };
        advance(&mut ctr, &done);
        let mut want = [0u8; 16];
        want[14] = 1;
        want[15] = 0x01;
        assert_eq!(
            ctr,
            Mechanism::AesCtr {
                iv: want.to_vec(),
                counter_bits: 32
            }
        );
    }
}
