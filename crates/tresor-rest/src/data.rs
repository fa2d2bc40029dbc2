//! Data objects (`CKO_DATA`) under a name: create, read, list (compat §1.1 lists
//! `POST/GET /v1/dataObject, /v1/dataObject/{name}`; it names no delete, so none is offered
//! here: an object created `destroyable` can be destroyed through PKCS#11). The engine keeps
//! them like any object (sealed, audited) and makes names unique (`CKA_TRESOR_UNIQUE_LABEL`
//! for the data class), so two creates of one name never both succeed.

use axum::extract::Path;
use axum::Json;
use serde::{Deserialize, Serialize};
use tresor_proto::{Request, Response, Template};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{code, ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::handlers::check_label;
use crate::tenant::{b64, bytes_of, ck, unb64, unexpected, Tenant};

/// Largest data object value, bytes.
const MAX_VALUE: usize = 64 * 1024;

/// `POST /v1/dataObject`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "config-blob", "value": "aGVsbG8=", "application": null,
    "modifiable": true, "destroyable": true, "private": true}))]
pub struct CreateDataObjectRequest {
    /// Name (`CKA_LABEL`), unique among the partition's data objects.
    #[serde(alias = "label")]
    pub name: String,
    /// The value, base64 (at most 64 KiB).
    pub value: String,
    /// Application description (`CKA_APPLICATION`).
    pub application: Option<String>,
    /// May later be changed (default true).
    pub modifiable: Option<bool>,
    /// May be destroyed (default true).
    pub destroyable: Option<bool>,
    /// Visible only to the logged-in partition user (default true).
    pub private: Option<bool>,
}

/// A data object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "config-blob", "value": "aGVsbG8=", "application": "",
    "modifiable": true, "destroyable": true, "private": true}))]
pub struct DataObjectResponse {
    /// Name.
    pub name: String,
    /// The value, base64.
    pub value: String,
    /// Application description.
    pub application: String,
    /// Modifiable.
    pub modifiable: bool,
    /// Destroyable.
    pub destroyable: bool,
    /// Private.
    pub private: bool,
}

fn data_template(name: &str) -> Template {
    Template::new()
        .with_ulong(ck::CKA_CLASS, ck::CKO_DATA)
        .with_bytes(ck::CKA_LABEL, name.as_bytes())
}

/// The handle of the data object named `name` (653 if none).
async fn find(t: &Tenant, name: &str) -> ApiResult<i64> {
    match t
        .call(Request::FindObjects {
            template: data_template(name).with_bool(ck::CKA_TOKEN, true),
            max: 1,
        })
        .await?
    {
        Response::Objects { objects } => objects.first().copied().ok_or_else(|| {
            ApiError::new(
                code::DATA_OBJECT_NOT_EXISTENT,
                format!("no data object named {name:?}"),
            )
        }),
        other => Err(unexpected(&other)),
    }
}

async fn describe(t: &Tenant, h: i64) -> ApiResult<DataObjectResponse> {
    let (rec, _) = t.record(h).await?;
    let flag = |n: &str| {
        rec.pointer(&format!("/flags/{n}"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let field = |n: &str| bytes_of(rec.pointer(&format!("/data/{n}"))).unwrap_or_default();
    Ok(DataObjectResponse {
        name: rec
            .get("label")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        value: b64(&field("value")),
        application: String::from_utf8_lossy(&field("application")).into_owned(),
        modifiable: flag("modifiable"),
        destroyable: flag("destroyable"),
        private: flag("private"),
    })
}

/// Create a data object.
#[utoipa::path(post, path = "/v1/dataObject", tag = "data objects",
    request_body = CreateDataObjectRequest,
    responses((status = 200, body = DataObjectResponse), (status = "4XX", body = crate::error::ErrorBody),
        (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn create(
    c: Caller,
    ApiJson(r): ApiJson<CreateDataObjectRequest>,
) -> ApiResult<Json<DataObjectResponse>> {
    check_label(&r.name)?;
    let value = unb64("value", &r.value)
        .map_err(|e| ApiError::new(code::DATA_OBJECT_INVALID_VALUE, e.message))?;
    if value.len() > MAX_VALUE {
        return Err(ApiError::new(
            code::DATA_OBJECT_INVALID_VALUE,
            format!("value is {} bytes; at most {MAX_VALUE}", value.len()),
        ));
    }
    let mut tm = data_template(&r.name)
        .with_bool(ck::CKA_TOKEN, true)
        .with_bytes(ck::CKA_VALUE, &value)
        .with_bool(ck::CKA_MODIFIABLE, r.modifiable.unwrap_or(true))
        .with_bool(ck::CKA_DESTROYABLE, r.destroyable.unwrap_or(true))
        .with_bool(ck::CKA_PRIVATE, r.private.unwrap_or(true))
        .with_ulong(ck::CKA_TRESOR_UNIQUE_LABEL, 1 << ck::CKO_DATA);
    if let Some(a) = r.application.as_deref().filter(|a| !a.is_empty()) {
        tm = tm.with_bytes(ck::CKA_APPLICATION, a.as_bytes());
    }
    let t = &c.tenant;
    let h = match t.call(Request::CreateObject { template: tm }).await {
        Ok(Response::ObjectCreated { object }) => object,
        Ok(other) => return Err(unexpected(&other)),
        Err(e) if e.code == code::KEY_ALREADY_EXISTING => {
            return Err(ApiError::new(
                code::DATA_OBJECT_ALREADY_EXISTING,
                format!("a data object named {:?} exists", r.name),
            ))
        }
        Err(e) => return Err(e),
    };
    Ok(Json(describe(t, h).await?))
}

/// A data object by name.
#[utoipa::path(get, path = "/v1/dataObject/{name}", tag = "data objects",
    params(("name" = String, Path, description = "data object name")),
    responses((status = 200, body = DataObjectResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get(c: Caller, Path(name): Path<String>) -> ApiResult<Json<DataObjectResponse>> {
    check_label(&name)?;
    let t = &c.tenant;
    let h = find(t, &name).await?;
    Ok(Json(describe(t, h).await?))
}

/// Names of the partition's data objects.
#[utoipa::path(get, path = "/v1/dataObject", tag = "data objects",
    responses((status = 200, body = Vec<String>), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list(c: Caller) -> ApiResult<Json<Vec<String>>> {
    let t = &c.tenant;
    let mut names = std::collections::BTreeSet::new();
    for h in t.handles_of_class(ck::CKO_DATA).await? {
        names.insert(t.label_of(h).await?);
    }
    Ok(Json(names.into_iter().collect()))
}
