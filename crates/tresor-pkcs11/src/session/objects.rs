//! Objects: create, copy, destroy, attributes (with the vendor attestation attributes),
//! find.

use super::*;

impl Session {
    // ---- objects --------------------------------------------------------------------------

    pub(super) fn check_writable(&self, token: bool) -> Result<()> {
        if token && !self.rw {
            fail!(
                CKR_SESSION_READ_ONLY,
                "token objects need a read/write session"
            );
        }
        Ok(())
    }

    pub(super) fn created(&self, id: i64) -> u64 {
        if id < 0 {
            self.state.lock().objects.push(id);
        }
        handle(id)
    }

    /// `C_CreateObject`.
    pub fn create_object(&self, raw: &[RawAttr]) -> Result<u64> {
        let t = attrs::template(raw)?;
        self.check_writable(attrs::bool_in(&t, CKA_TOKEN) == Some(true))?;
        match self.slot.call(&Request::CreateObject { template: t })? {
            Response::ObjectCreated { object } => Ok(self.created(object)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_CopyObject`.
    pub fn copy_object(&self, h: u64, raw: &[RawAttr]) -> Result<u64> {
        let object = object_id(h)?;
        let t = attrs::template(raw)?;
        let token = attrs::bool_in(&t, CKA_TOKEN).unwrap_or(object > 0);
        self.check_writable(token)?;
        match self.slot.call(&Request::CopyObject {
            object,
            template: t,
        })? {
            Response::ObjectCopied { object } => Ok(self.created(object)),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&self, h: u64) -> Result<()> {
        let object = object_id(h)?;
        self.check_writable(object > 0)?;
        match self.slot.call(&Request::DestroyObject { object })? {
            Response::ObjectDestroyed {} => {
                self.slot.forget(object);
                let mut st = self.state.lock();
                st.objects.retain(|o| *o != object);
                st.attested = None;
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Destroys the session objects this session created (on close).
    pub fn destroy_session_objects(&self) {
        let objects = std::mem::take(&mut self.state.lock().objects);
        // Their sealed copies go first: whatever the node says, they never come back.
        for object in &objects {
            self.slot.forget(*object);
            self.slot.drop_copy(*object);
        }
        for object in objects {
            // Already destroyed elsewhere is fine; a token that cannot be reached has lost
            // its session objects with the context, so stop asking (bounded close).
            if let Err(e) = self.slot.call(&Request::DestroyObject { object }) {
                if e.rv == CKR_DEVICE_REMOVED || e.rv == CKR_TOKEN_NOT_PRESENT {
                    break;
                }
            }
        }
    }

    /// `C_GetAttributeValue`: one outcome per type.
    pub fn get_attributes(&self, h: u64, types: &[u64]) -> Result<Vec<tresor_proto::AttrRead>> {
        use tresor_proto::AttrRead;
        let object = object_id(h)?;
        let stored: Vec<u64> = types
            .iter()
            .copied()
            .filter(|t| !attrs::is_attestation(*t))
            .collect();
        let mut reads = if stored.is_empty() {
            // Still check that the object exists.
            self.slot.attributes(object, &[CKA_CLASS])?;
            Vec::new()
        } else {
            self.slot.attributes(object, &stored)?
        }
        .into_iter();
        let attestation = if types.iter().any(|t| attrs::is_attestation(*t)) {
            self.attestation(object)?
        } else {
            None
        };
        Ok(types
            .iter()
            .map(|t| {
                if attrs::is_attestation(*t) {
                    match (&attestation, *t) {
                        (Some(a), CKA_TRESOR_ATTESTATION) => {
                            AttrRead::Value(Secret::from_slice(a.xml.as_bytes()))
                        }
                        (Some(a), CKA_TRESOR_ATTESTATION_SIGNATURE) => {
                            AttrRead::Value(Secret::from_slice(&a.signature))
                        }
                        (Some(a), _) => AttrRead::Value(Secret::from_slice(a.chain_pem.as_bytes())),
                        (None, _) => AttrRead::Invalid,
                    }
                } else {
                    reads.next().unwrap_or(AttrRead::Invalid)
                }
            })
            .collect())
    }

    /// The attestation of `object`: the one read by this session less than a minute ago, or
    /// a new one (`None` if the object has none).
    fn attestation(&self, object: i64) -> Result<Option<tresor_proto::Attestation>> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(60);
        if let Some((o, at, a)) = &self.state.lock().attested {
            if *o == object && at.elapsed() < FRESH {
                return Ok(Some(a.clone()));
            }
        }
        match self.slot.call(&Request::Attest { key: object }) {
            Ok(Response::Attested { attestation }) => {
                self.state.lock().attested =
                    Some((object, std::time::Instant::now(), attestation.clone()));
                Ok(Some(attestation))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(e) if e.rv == CKR_OBJECT_HANDLE_INVALID => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// `C_SetAttributeValue`.
    pub fn set_attributes(&self, h: u64, raw: &[RawAttr]) -> Result<()> {
        let object = object_id(h)?;
        let t = attrs::template(raw)?;
        self.check_writable(object > 0)?;
        match self.slot.call(&Request::SetAttributes {
            object,
            template: t,
        })? {
            Response::AttributesSet {} => {
                self.state.lock().attested = None;
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `C_GetObjectSize`: the size is not disclosed (`CK_UNAVAILABLE_INFORMATION`), once
    /// the handle is known to be valid.
    pub fn object_size(&self, h: u64) -> Result<u64> {
        let object = object_id(h)?;
        self.slot.attributes(object, &[CKA_CLASS])?;
        Ok(CK_UNAVAILABLE_INFORMATION)
    }

    /// `C_FindObjectsInit`: the search runs now (one request); `C_FindObjects` pages locally.
    pub fn find_init(&self, raw: &[RawAttr]) -> Result<()> {
        let mut st = self.state.lock();
        if st.find.is_some() {
            fail!(CKR_OPERATION_ACTIVE, "a search is active");
        }
        let handles = match attrs::template(raw) {
            // An attribute this token does not know matches no object.
            Err(e) if e.rv == CKR_ATTRIBUTE_TYPE_INVALID => Vec::new(),
            Err(e) => return Err(e),
            Ok(t) => match self.slot.call(&Request::FindObjects {
                template: t,
                max: u32::MAX,
            })? {
                Response::Objects { objects } => objects,
                other => return Err(unexpected(&other)),
            },
        };
        st.find = Some(Find { handles, pos: 0 });
        Ok(())
    }

    /// `C_FindObjects`.
    pub fn find(&self, max: usize) -> Result<Vec<u64>> {
        let mut st = self.state.lock();
        let f = st
            .find
            .as_mut()
            .ok_or_else(|| Error::new(CKR_OPERATION_NOT_INITIALIZED, "no search"))?;
        let end = (f.pos + max).min(f.handles.len());
        let out = f.handles[f.pos..end].iter().map(|id| handle(*id)).collect();
        f.pos = end;
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self) -> Result<()> {
        if self.state.lock().find.take().is_none() {
            fail!(CKR_OPERATION_NOT_INITIALIZED, "no search");
        }
        Ok(())
    }
}
