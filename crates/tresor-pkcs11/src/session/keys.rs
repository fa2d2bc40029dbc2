//! Key generation, wrap / unwrap, derive, ML-KEM encapsulation and random.

use tresor_proto::{Request, Response};
use zeroize::Zeroizing;

use super::*;

impl Session {
    // ---- keys -----------------------------------------------------------------------------

    /// `C_GenerateKey`.
    pub fn generate_key(&self, m: &RawMechanism, raw: &[RawAttr]) -> Result<u64> {
        if !mechanism::is_key_gen(m.ty) {
            fail!(
                CKR_MECHANISM_INVALID,
                "mechanism {:#x} does not generate keys",
                m.ty
            );
        }
        let t = attrs::template(raw)?;
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self.slot.call(&Request::GenerateKey {
            mechanism: m.ty,
            template: t,
        })? {
            Response::KeyGenerated { key } => Ok(self.created(key)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_GenerateKeyPair`.
    pub fn generate_key_pair(
        &self,
        m: &RawMechanism,
        public: &[RawAttr],
        private: &[RawAttr],
    ) -> Result<(u64, u64)> {
        if !mechanism::is_key_pair_gen(m.ty) {
            fail!(
                CKR_MECHANISM_INVALID,
                "mechanism {:#x} does not generate key pairs",
                m.ty
            );
        }
        let pt = attrs::template(public)?;
        let st = attrs::template(private)?;
        self.check_writable(
            attrs::bool_in(&pt, CKA_TOKEN) == Some(true)
                || attrs::bool_in(&st, CKA_TOKEN) == Some(true),
        )?;
        match self.slot.call(&Request::GenerateKeyPair {
            mechanism: m.ty,
            public_template: pt,
            private_template: st,
        })? {
            Response::KeyPairGenerated {
                public_key,
                private_key,
            } => Ok((self.created(public_key), self.created(private_key))),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_WrapKey`; a length query computes the wrapping once and keeps it for the next call.
    pub fn wrap_key(
        &self,
        m: &RawMechanism,
        wrapping: u64,
        target: u64,
        cap: Option<usize>,
    ) -> Result<Out> {
        let mech = mechanism::to_wire(m, Usage::Wrap)?;
        self.wrap_with(mech, wrapping, target, cap)
    }

    /// `C_WrapKeyAuthenticated` (3.2): an AEAD wrapping with `ad` as its associated data.
    pub fn wrap_key_authenticated(
        &self,
        m: &RawMechanism,
        wrapping: u64,
        target: u64,
        ad: &[u8],
        cap: Option<usize>,
    ) -> Result<Out> {
        let mech = mechanism::with_associated_data(mechanism::to_wire(m, Usage::Wrap)?, ad)?;
        self.wrap_with(mech, wrapping, target, cap)
    }

    /// The wrapping for [`Self::wrap_key`] and [`Self::wrap_key_authenticated`]; the result
    /// of a length query is kept for a call with the same mechanism (parameters included) and
    /// keys.
    fn wrap_with(
        &self,
        mech: Mechanism,
        wrapping: u64,
        target: u64,
        cap: Option<usize>,
    ) -> Result<Out> {
        let (wk, tk) = (key_id(wrapping)?, key_id(target)?);
        let stashed = {
            let st = self.state.lock();
            st.wrapped
                .as_ref()
                .filter(|((m, w, t), _)| *m == mech && *w == wk && *t == tk)
                .map(|(_, v)| v.clone())
        };
        let wrapped = match stashed {
            Some(w) => w,
            None => match self
                .slot
                .call(&Request::WrapKey {
                    wrapping_key: wk,
                    mechanism: mech.clone(),
                    target: tk,
                })
                .map_err(key_error)?
            {
                Response::Wrapped { wrapped } => wrapped,
                other => return Err(unexpected(&other)),
            },
        };
        let n = wrapped.len();
        let mut st = self.state.lock();
        Ok(match cap {
            Some(c) if c >= n => {
                st.wrapped = None;
                Out::Data(Zeroizing::new(wrapped))
            }
            _ => {
                st.wrapped = Some(((mech, wk, tk), wrapped));
                if cap.is_none() {
                    Out::Len(n)
                } else {
                    Out::TooSmall(n)
                }
            }
        })
    }

    /// `C_UnwrapKey`.
    pub fn unwrap_key(
        &self,
        m: &RawMechanism,
        unwrapping: u64,
        wrapped: &[u8],
        raw: &[RawAttr],
    ) -> Result<u64> {
        let mech = mechanism::to_wire(m, Usage::Unwrap)?;
        self.unwrap_with(mech, unwrapping, wrapped, raw)
    }

    /// `C_UnwrapKeyAuthenticated` (3.2): the AEAD unwrapping of what
    /// [`Self::wrap_key_authenticated`] made with the same associated data `ad`.
    pub fn unwrap_key_authenticated(
        &self,
        m: &RawMechanism,
        unwrapping: u64,
        wrapped: &[u8],
        raw: &[RawAttr],
        ad: &[u8],
    ) -> Result<u64> {
        let mech = mechanism::with_associated_data(mechanism::to_wire(m, Usage::Unwrap)?, ad)?;
        self.unwrap_with(mech, unwrapping, wrapped, raw)
    }

    fn unwrap_with(
        &self,
        mech: Mechanism,
        unwrapping: u64,
        wrapped: &[u8],
        raw: &[RawAttr],
    ) -> Result<u64> {
        let uk = key_id(unwrapping)?;
        let t = attrs::template(raw)?;
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self
            .slot
            .call(&Request::UnwrapKey {
                unwrapping_key: uk,
                mechanism: mech,
                wrapped: wrapped.to_vec(),
                template: t,
            })
            .map_err(key_error)?
        {
            Response::Unwrapped { key } => Ok(self.created(key)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_DeriveKey`.
    pub fn derive_key(&self, m: &RawMechanism, base: u64, raw: &[RawAttr]) -> Result<u64> {
        let mech = mechanism::to_wire(m, Usage::Derive)?;
        let bk = key_id(base)?;
        let t = attrs::template(raw)?;
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self
            .slot
            .call(&Request::DeriveKey {
                base_key: bk,
                mechanism: mech,
                template: t,
            })
            .map_err(key_error)?
        {
            Response::Derived { key } => Ok(self.created(key)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_EncapsulateKey`: the ciphertext length is known from the key's parameter set, so a
    /// query or a short buffer creates no key.
    pub fn encapsulate(
        &self,
        m: &RawMechanism,
        public: u64,
        raw: &[RawAttr],
        cap: Option<usize>,
    ) -> Result<(Out, u64)> {
        let mech = mechanism::to_wire(m, Usage::Kem)?;
        let pk = key_id(public)?;
        let t = attrs::template(raw)?;
        let set = self
            .slot
            .ulong_attribute(pk, CKA_PARAMETER_SET)
            .map_err(key_error)?;
        if let Some(n) = set.and_then(mechanism::ml_kem_ciphertext_len) {
            match cap {
                None => return Ok((Out::Len(n), 0)),
                Some(c) if c < n => return Ok((Out::TooSmall(n), 0)),
                _ => {}
            }
        } else if cap.is_none() {
            fail!(CKR_KEY_TYPE_INCONSISTENT, "not an ML-KEM key");
        }
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self
            .slot
            .call(&Request::Encapsulate {
                key: pk,
                mechanism: mech,
                template: t,
            })
            .map_err(key_error)?
        {
            Response::Encapsulated { ciphertext, key } => {
                Ok((Out::Data(Zeroizing::new(ciphertext)), self.created(key)))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `C_DecapsulateKey`.
    pub fn decapsulate(
        &self,
        m: &RawMechanism,
        private: u64,
        raw: &[RawAttr],
        ciphertext: &[u8],
    ) -> Result<u64> {
        let mech = mechanism::to_wire(m, Usage::Kem)?;
        let sk = key_id(private)?;
        let t = attrs::template(raw)?;
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self
            .slot
            .call(&Request::Decapsulate {
                key: sk,
                mechanism: mech,
                ciphertext: ciphertext.to_vec(),
                template: t,
            })
            .map_err(key_error)?
        {
            Response::Decapsulated { key } => Ok(self.created(key)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_GenerateRandom`.
    pub fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        const CHUNK: usize = 1 << 20;
        let mut out = Zeroizing::new(Vec::with_capacity(len.min(MAX_DATA)));
        while out.len() < len {
            let n = (len - out.len()).min(CHUNK);
            match self.slot.call(&Request::Random { len: n as u32 })? {
                Response::Random { bytes } if bytes.len() == n => {
                    out.extend_from_slice(bytes.expose())
                }
                other => return Err(unexpected(&other)),
            }
        }
        Ok(out)
    }
}
