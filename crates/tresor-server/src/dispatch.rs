//! One request on an open context: convert the wire values, call the engine, convert back.
//! Every rule is the engine's; this module only translates.

use tresor_core::crypto::Mechanism as CoreMechanism;
use tresor_core::template::Template as CoreTemplate;
use tresor_core::{Context, Error, Rv};
use tresor_proto::{Mechanism, Request, Response, Secret, Template};

fn mech(m: &Mechanism) -> Result<CoreMechanism, Error> {
    CoreMechanism::try_from(m)
}

fn tmpl(t: &Template) -> Result<CoreTemplate, Error> {
    CoreTemplate::try_from(t)
}

fn usize_len(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Requests that may run with key passwords: operations on objects of the open context.
fn wrappable(req: &Request) -> bool {
    !matches!(
        req,
        Request::Ping {}
            | Request::OpenSession { .. }
            | Request::CloseSession {}
            | Request::Login { .. }
            | Request::Logout {}
            | Request::InitPin { .. }
            | Request::SetPin { .. }
            | Request::CreatePartition { .. }
            | Request::ListPartitions {}
            | Request::DeletePartition { .. }
            | Request::GetMechanisms {}
            | Request::RegisterClient { .. }
            | Request::AttachSession { .. }
            | Request::WithKeyPasswords { .. }
    )
}

/// Run `req` on `ctx`. Session-level requests (open, attach, close, register) are handled by
/// the connection, not here.
pub async fn dispatch(ctx: &Context, req: &Request) -> Response {
    let r = match req {
        Request::Sealing { request } => sealing(ctx, request).await,
        req => run(ctx, req).await,
    };
    match r {
        Ok(r) => r,
        Err(e) => Response::from(&e),
    }
}

/// `Sealing`: run the wrapped request, then seal a copy of every session object it created or
/// changed for the context's application. The context must be able to seal before anything
/// runs; a copy that cannot be made (which would only be an internal failure) is left out and
/// logged rather than failing a request whose change is done.
async fn sealing(ctx: &Context, req: &Request) -> Result<Response, Error> {
    ctx.check_sealable()?;
    let answer = run(ctx, req).await?;
    let objects = touched(req, &answer)
        .into_iter()
        .filter(|o| *o < 0)
        .filter_map(|o| match ctx.seal_session_object(o) {
            Ok(s) => Some(tresor_proto::SealedObject {
                object: s.object,
                version: s.version,
                sealed: s.sealed,
            }),
            Err(e) => {
                tracing::warn!(context = ctx.id(), object = o, error = %e, "no sealed copy of a session object");
                None
            }
        })
        .collect();
    Ok(Response::Sealed {
        objects,
        answer: Box::new(answer),
    })
}

/// The objects a successful request created (from its answer) or changed (from the request).
fn touched(req: &Request, answer: &Response) -> Vec<i64> {
    match (req, answer) {
        (_, Response::ObjectCreated { object } | Response::ObjectCopied { object }) => {
            vec![*object]
        }
        (
            _,
            Response::KeyGenerated { key }
            | Response::Unwrapped { key }
            | Response::Derived { key }
            | Response::Encapsulated { key, .. }
            | Response::Decapsulated { key },
        ) => vec![*key],
        (
            _,
            Response::KeyPairGenerated {
                public_key,
                private_key,
            },
        ) => vec![*public_key, *private_key],
        (Request::SetAttributes { object, .. }, Response::AttributesSet {}) => vec![*object],
        (Request::BlockKey { key }, Response::KeyBlocked {})
        | (Request::UnblockKey { key }, Response::KeyUnblocked {}) => vec![*key],
        _ => Vec::new(),
    }
}

async fn run(ctx: &Context, req: &Request) -> Result<Response, Error> {
    Ok(match req {
        Request::WithKeyPasswords { passwords, request } => {
            if !wrappable(request) {
                return Err(Error::new(
                    Rv::ArgumentsBad,
                    format!("{} cannot be sent with key passwords", request.name()),
                ));
            }
            let presented: Vec<(i64, &[u8])> = passwords
                .iter()
                .map(|p| (p.key, p.password.expose()))
                .collect();
            let inner = ctx
                .with_key_passwords(&presented, Box::pin(run(ctx, request)))
                .await?;
            Response::WithKeyPasswords {
                response: Box::new(inner),
            }
        }
        Request::ModifyPolicy { key, policy } => {
            ctx.modify_policy(*key, policy).await?;
            Response::PolicyModified {}
        }
        Request::ChangeKeyPassword { key, new_password } => {
            ctx.change_key_password(*key, new_password.as_ref().map(Secret::expose))
                .await?;
            Response::KeyPasswordChanged {}
        }
        Request::Ping {} => Response::Pong {
            max_frame_len: u32::try_from(tresor_proto::DEFAULT_MAX_FRAME_LEN).unwrap_or(u32::MAX),
        },
        Request::Login { user, pin } => {
            ctx.login((*user).into(), pin.expose()).await?;
            Response::LoggedIn {}
        }
        Request::Logout {} => {
            ctx.logout()?;
            Response::LoggedOut {}
        }
        Request::InitPin { new_pin } => {
            ctx.init_pin(new_pin.expose()).await?;
            Response::PinInitialized {}
        }
        Request::SetPin { old_pin, new_pin } => {
            ctx.set_pin(old_pin.expose(), new_pin.expose()).await?;
            Response::PinChanged {}
        }
        Request::CreateObject { template } => Response::ObjectCreated {
            object: ctx.create_object(&tmpl(template)?).await?,
        },
        Request::GenerateKey {
            mechanism,
            template,
        } => Response::KeyGenerated {
            key: ctx.generate_key(*mechanism, &tmpl(template)?).await?,
        },
        Request::GenerateKeyPair {
            mechanism,
            public_template,
            private_template,
        } => {
            let (public_key, private_key) = ctx
                .generate_key_pair(*mechanism, &tmpl(public_template)?, &tmpl(private_template)?)
                .await?;
            Response::KeyPairGenerated {
                public_key,
                private_key,
            }
        }
        Request::DestroyObject { object } => {
            ctx.destroy_object(*object).await?;
            Response::ObjectDestroyed {}
        }
        Request::SetAttributes { object, template } => {
            ctx.set_attributes(*object, &tmpl(template)?).await?;
            Response::AttributesSet {}
        }
        Request::CopyObject { object, template } => Response::ObjectCopied {
            object: ctx.copy_object(*object, &tmpl(template)?).await?,
        },
        Request::GetAttributes { object, types } => Response::Attributes {
            values: ctx
                .get_attributes(*object, types)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        },
        Request::FindObjects { template, max } => Response::Objects {
            objects: ctx.find_objects(&tmpl(template)?, usize_len(*max)).await?,
        },
        Request::Record { object } => {
            let (rec, usage_count) = ctx.record(*object).await?;
            Response::Record {
                record_json: tresor_proto::convert::record_to_json(&rec)
                    .map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?,
                usage_count,
            }
        }
        Request::Sign {
            key,
            mechanism,
            data,
        } => Response::Signature {
            signature: ctx.sign(*key, &mech(mechanism)?, data.expose()).await?,
        },
        Request::SignatureLen { key, mechanism } => Response::SignatureLen {
            len: ctx.signature_len(*key, &mech(mechanism)?).await? as u64,
        },
        Request::Verify {
            key,
            mechanism,
            data,
            signature,
        } => {
            ctx.verify(*key, &mech(mechanism)?, data.expose(), signature)
                .await?;
            Response::Verified {}
        }
        Request::Encrypt {
            key,
            mechanism,
            data,
        } => Response::Encrypted {
            ciphertext: ctx.encrypt(*key, &mech(mechanism)?, data.expose()).await?,
        },
        Request::Decrypt {
            key,
            mechanism,
            data,
        } => Response::Decrypted {
            plaintext: Secret(ctx.decrypt(*key, &mech(mechanism)?, data).await?),
        },
        Request::WrapKey {
            wrapping_key,
            mechanism,
            target,
        } => Response::Wrapped {
            wrapped: ctx
                .wrap_key(*wrapping_key, &mech(mechanism)?, *target)
                .await?,
        },
        Request::UnwrapKey {
            unwrapping_key,
            mechanism,
            wrapped,
            template,
        } => Response::Unwrapped {
            key: ctx
                .unwrap_key(
                    *unwrapping_key,
                    &mech(mechanism)?,
                    wrapped,
                    &tmpl(template)?,
                )
                .await?,
        },
        Request::DeriveKey {
            base_key,
            mechanism,
            template,
        } => Response::Derived {
            key: ctx
                .derive_key(*base_key, &mech(mechanism)?, &tmpl(template)?)
                .await?,
        },
        Request::Encapsulate {
            key,
            mechanism,
            template,
        } => {
            let (ciphertext, key) = ctx
                .encapsulate(*key, &mech(mechanism)?, &tmpl(template)?)
                .await?;
            Response::Encapsulated { ciphertext, key }
        }
        Request::Decapsulate {
            key,
            mechanism,
            ciphertext,
            template,
        } => Response::Decapsulated {
            key: ctx
                .decapsulate(*key, &mech(mechanism)?, ciphertext, &tmpl(template)?)
                .await?,
        },
        Request::BlockKey { key } => {
            ctx.block_key(*key).await?;
            Response::KeyBlocked {}
        }
        Request::UnblockKey { key } => {
            ctx.unblock_key(*key).await?;
            Response::KeyUnblocked {}
        }
        Request::Attest { key } => Response::Attested {
            attestation: ctx.attest(*key).await?.into(),
        },
        Request::Digest { hash, data } => Response::Digest {
            digest: ctx.digest((*hash).into(), data.expose())?,
        },
        Request::Random { len } => Response::Random {
            bytes: Secret(ctx.random(usize_len(*len))?),
        },
        Request::CreatePartition { .. }
        | Request::ListPartitions {}
        | Request::DeletePartition { .. } => {
            return Err(Error::new(
                Rv::FunctionNotSupported,
                "partition administration is not offered to partition users; operators use `tresor admin`",
            ))
        }
        Request::GetMechanisms {} => Response::Mechanisms {
            mechanisms: tresor_core::engine::mechanisms::catalogue()
                .into_iter()
                .map(|m| tresor_proto::MechanismInfo {
                    mechanism: m.mechanism,
                    min_key_size: m.min_key_size,
                    max_key_size: m.max_key_size,
                    flags: m.flags,
                })
                .collect(),
        },
        Request::InitToken { so_pin, label } => {
            // The context is the one the end-to-end channel opened on the partition the
            // gateway admitted; the engine checks the label, the SO PIN (with its lockout) and
            // that this application holds no login or session objects.
            match ctx.init_token(so_pin.expose(), label).await {
                Ok(n) => Response::TokenInitialized {
                    objects_destroyed: n as u64,
                },
                Err(e) => {
                    tracing::info!(partition = %ctx.partition_name(), context = ctx.id(), error = %e, "C_InitToken refused");
                    return Err(e);
                }
            }
        }
        Request::TokenStatus {} => {
            let s = ctx.token_status().await?;
            Response::TokenStatus {
                user_pin_initialized: s.user_pin_initialized,
                so_failures: s.so_failures,
                user_failures: s.user_failures,
                max_failures: s.max_failures,
            }
        }
        Request::RestoreSessionObjects { objects } => {
            let objects: Vec<tresor_core::SealedObject> = objects
                .iter()
                .map(|o| tresor_core::SealedObject {
                    object: o.object,
                    version: o.version,
                    sealed: o.sealed.clone(),
                })
                .collect();
            let n = ctx.restore_session_objects(&objects).await?;
            tracing::info!(partition = %ctx.partition_name(), context = ctx.id(), restored = n, "session objects restored into a new context");
            Response::SessionObjectsRestored {
                restored: u32::try_from(n).unwrap_or(u32::MAX),
            }
        }
        Request::Sealing { .. } => {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a Sealing request cannot wrap another one",
            ))
        }
        Request::OpenSession { .. }
        | Request::AttachSession { .. }
        | Request::CloseSession {}
        | Request::RegisterClient { .. } => {
            return Err(Error::new(
                Rv::FunctionFailed,
                "a session is already open on this connection",
            ))
        }
    })
}
