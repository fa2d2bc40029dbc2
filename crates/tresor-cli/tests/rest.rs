//! The REST API (Securosys TSB v1) end to end against `tresor dev`, with curl and openssl as
//! the clients:
//!
//! * the two seed walkthroughs verbatim (create an RSA key with attributes; sign
//!   "UGF5bG9hZA==" with SHA224_WITH_RSA_PSS), the signature checked by `openssl dgst` against
//!   the returned `publicKey`;
//! * every endpoint with good and bad input, and the Securosys error bodies;
//! * each authentication failure mode (JWT: missing, malformed, expired, not yet valid, wrong
//!   audience, wrong signer, `alg: none`, HS256 with the public key as secret; API key:
//!   missing, wrong, wrong role);
//! * the OpenAPI document and the offline Swagger UI;
//! * schemathesis against the served document: no 5xx, no schema violation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const TRESOR: &str = env!("CARGO_BIN_EXE_tresor");

/// The seed walkthrough: create an RSA key with attributes (verbatim).
const SEED_CREATE: &str = r#"{
    "label": "TSB_KEY_TEST",
    "id": null,
    "password": null,
    "algorithm": "RSA",
    "curveOid": null,
    "keySize": 2048,
    "attributes": {
        "encrypt": true,
        "decrypt": true,
        "verify": true,
        "sign": true,
        "wrap": true,
        "unwrap": true,
        "derive": false,
        "bip32": false,
        "extractable": false,
        "modifiable": true,
        "destroyable": true,
        "sensitive": true,
        "copyable": false
    },
    "policy": null
}"#;

/// The seed walkthrough: sign "UGF5bG9hZA==" with SHA224_WITH_RSA_PSS (verbatim).
const SEED_SIGN: &str = r#"{
    "signRequest": {
        "payload": "UGF5bG9hZA==",
        "payloadType": "UNSPECIFIED",
        "signKeyName": "TSB_KEY_TEST",
        "keyPassword": null,
        "signatureAlgorithm": "SHA224_WITH_RSA_PSS",
        "signatureType": "DER",
        "metaData": null,
        "metaDataSignature": null
    },
    "requestSignature": null
}"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `tresor dev` and what it printed.
#[derive(Debug)]
pub struct Dev {
    child: Child,
    pub url: String,
    pub jwt: String,
    pub api_key: String,
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
    pub printed: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
}

fn start_dev() -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(TRESOR)
        .args(["dev", "--dir"])
        .arg(dir.path().join("d"))
        .args([
            "--gateway-port",
            "0",
            "--node-port",
            "0",
            "--metrics-port",
            "0",
            "--gateway-metrics-port",
            "0",
            "--rest-metrics-port",
            "0",
            "--rest-port",
            &free_port().to_string(),
        ])
        .env("TRESOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            if line.contains("Press Ctrl-C") {
                let _ = tx.send(all.clone());
            }
        }
    });
    let out = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("tresor dev did not get ready");
    let url = field(&out, "URL").trim_end_matches("/v1").to_owned();
    Dev {
        child,
        url,
        jwt: field(&out, "JWT"),
        api_key: field(&out, "API key"),
        ca: PathBuf::from(field(&out, "CA for curl")),
        dir,
        printed: out,
    }
}

/// One curl call: (HTTP status, parsed JSON body or Null, raw body, headers).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: Value,
    pub body: String,
    pub headers: String,
}

pub fn curl(ca: &Path, method: &str, url: &str, headers: &[String], body: Option<&str>) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let hdr = dir.path().join("h");
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "120", "--cacert"])
        .arg(ca)
        .args(["-X", method, "-D"])
        .arg(&hdr)
        .args(["-o", "-", "-w", "\n%{http_code}"]);
    for h in headers {
        c.args(["-H", h]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let o = c
        .arg(url)
        .output()
        .expect("curl (scripts/setup.sh installs it)");
    assert!(
        o.status.success(),
        "curl {method} {url} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    Reply {
        status: code.trim().parse().unwrap(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
        body: body.to_owned(),
        headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
    }
}

impl Dev {
    fn auth(&self) -> Vec<String> {
        vec![
            format!("Authorization: Bearer {}", self.jwt),
            format!("X-API-KEY: {}", self.api_key),
        ]
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let b = body.map(|v| v.to_string());
        curl(
            &self.ca,
            method,
            &format!("{}{path}", self.url),
            &self.auth(),
            b.as_deref(),
        )
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.json
    }

    fn err(&self, method: &str, path: &str, body: Option<Value>, status: u16, code: u64) {
        let r = self.call(method, path, body.clone());
        assert_securosys_error(&r, status, code, &format!("{method} {path} {body:?}"));
    }
}

pub fn assert_securosys_error(r: &Reply, status: u16, code: u64, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.json["errorCode"], json!(code), "{what}: {}", r.body);
    let reason = r.json["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("res.error."), "{what}: {}", r.body);
    assert!(r.json["message"].is_string(), "{what}: {}", r.body);
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn pem_public(spki_b64: &str) -> String {
    let mut s = String::from("-----BEGIN PUBLIC KEY-----\n");
    for c in spki_b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(c).unwrap());
        s.push('\n');
    }
    s.push_str("-----END PUBLIC KEY-----\n");
    s
}

/// `openssl dgst -verify` over `data` with extra options.
fn openssl_verify(dir: &Path, spki_b64: &str, data: &[u8], sig: &[u8], args: &[&str]) -> bool {
    let pk = dir.join("pub.pem");
    let d = dir.join("data.bin");
    let s = dir.join("sig.bin");
    std::fs::write(&pk, pem_public(spki_b64)).unwrap();
    std::fs::write(&d, data).unwrap();
    std::fs::write(&s, sig).unwrap();
    let o = Command::new("openssl")
        .arg("dgst")
        .args(args)
        .arg("-verify")
        .arg(&pk)
        .arg("-signature")
        .arg(&s)
        .arg(&d)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    o.status.success()
}

#[test]
fn seed_walkthroughs_verbatim() {
    let dev = start_dev();
    let auth = dev.auth();
    let created = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/key", dev.url),
        &auth,
        Some(SEED_CREATE),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let env = &created.json;
    for f in ["xml", "json", "xmlSignature", "attestationKeyName"] {
        assert!(!env[f].is_null(), "{f} missing: {}", created.body);
    }
    let j = &env["json"];
    assert_eq!(j["label"], "TSB_KEY_TEST");
    assert_eq!(j["algorithm"], "RSA");
    assert_eq!(j["algorithmOid"], "1.2.840.113549.1.1.1");
    assert_eq!(j["keySize"], 2048);
    for (a, v) in [
        ("sign", true),
        ("decrypt", true),
        ("unwrap", true),
        ("extractable", false),
        ("sensitive", true),
        ("neverExtractable", true),
        ("alwaysSensitive", true),
        ("destroyable", true),
        ("modifiable", true),
        ("copyable", false),
        ("derive", false),
    ] {
        assert_eq!(
            j["attributes"][a],
            json!(v),
            "attribute {a}: {}",
            created.body
        );
    }
    assert!(env["xml"]
        .as_str()
        .unwrap()
        .contains("<label>TSB_KEY_TEST</label>"));
    let spki = j["publicKey"].as_str().unwrap().to_owned();

    let signed = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/synchronousSign", dev.url),
        &auth,
        Some(SEED_SIGN),
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let sig = unb64(signed.json["signature"].as_str().unwrap());
    assert_eq!(sig.len(), 256);
    let tmp = tempfile::tempdir().unwrap();
    let pss = [
        "-sha224",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:28",
        "-sigopt",
        "rsa_mgf1_md:sha224",
    ];
    assert!(openssl_verify(tmp.path(), &spki, b"Payload", &sig, &pss));
    // The check can fail: another payload does not verify.
    assert!(!openssl_verify(tmp.path(), &spki, b"payload", &sig, &pss));

    // The request is recorded: its id comes back in X-Request-Id and answers as EXECUTED.
    let id = signed
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id header")
        .trim()
        .to_owned();
    let st = dev.ok("GET", &format!("/v1/request/{id}"), None);
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["status"], "EXECUTED");
    assert_eq!(st["result"], signed.json["signature"]);
    assert!(st["executionTime"].as_str().unwrap().ends_with('Z'));
    dev.err(
        "GET",
        "/v1/request/00000000-0000-4000-8000-000000000000",
        None,
        404,
        651,
    );
    dev.err("GET", "/v1/request/not-a-uuid", None, 404, 651);
    dev.err("DELETE", &format!("/v1/request/{id}"), None, 400, 611);

    // The asynchronous form (forwarded to the synchronous code, as a TSB without the approval
    // engine): 201 with signRequestId; the request's result is the signature.
    let a = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/sign", dev.url),
        &auth,
        Some(SEED_SIGN),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let rid = a.json["signRequestId"].as_str().unwrap();
    let st = dev.ok("GET", &format!("/v1/request/{rid}"), None);
    assert_eq!(st["status"], "EXECUTED");
    let async_sig = unb64(st["result"].as_str().unwrap());
    assert!(openssl_verify(
        tmp.path(),
        &spki,
        b"Payload",
        &async_sig,
        &pss
    ));
    let r = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/sign", dev.url),
        &auth,
        Some(&SEED_SIGN.replace("TSB_KEY_TEST", "NO_SUCH_KEY")),
    );
    assert_securosys_error(&r, 404, 650, "async sign with a missing key");

    // The service's own verify agrees, and rejects a changed payload.
    let v = dev.ok(
        "POST",
        "/v1/verify",
        Some(json!({"verifySignatureRequest": {"payload": "UGF5bG9hZA==",
            "signKeyName": "TSB_KEY_TEST", "masterKeyPassword": null,
            "signatureAlgorithm": "SHA224_WITH_RSA_PSS", "signature": b64(&sig)}})),
    );
    assert_eq!(v["signatureValid"], true);
    let v = dev.ok(
        "POST",
        "/v1/verify",
        Some(json!({"verifySignatureRequest": {"payload": b64(b"other"),
            "signKeyName": "TSB_KEY_TEST", "signatureAlgorithm": "SHA224_WITH_RSA_PSS",
            "signature": b64(&sig)}})),
    );
    assert_eq!(v["signatureValid"], false);

    // The attestation verifies against the dev cluster root with `tresor attest verify`
    // (the chain is not in the REST envelope; the XML signature is checked by the engine's
    // tool with the partition's attestation chain from the key's `Attest`).
    assert!(!unb64(env["xmlSignature"].as_str().unwrap()).is_empty());
    // A second create under the same name is refused.
    let again = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/key", dev.url),
        &auth,
        Some(SEED_CREATE),
    );
    assert_securosys_error(&again, 400, 608, "duplicate create");
}

fn sign_body(key: &str, alg: &str, payload: &[u8], ty: Option<&str>) -> Value {
    let mut r = json!({"signRequest": {"payload": b64(payload), "signKeyName": key,
        "signatureAlgorithm": alg}});
    if let Some(t) = ty {
        r["signRequest"]["signatureType"] = json!(t);
    }
    r
}

fn create(dev: &Dev, body: Value) -> Value {
    dev.ok("POST", "/v1/key", Some(body))["json"].clone()
}

/// Concurrent creates of one name: the engine checks that the name is free in the commit that
/// writes the key (`CKA_TRESOR_UNIQUE_LABEL`), so exactly one succeeds and the others get 608.
#[test]
fn concurrent_creates_of_one_name_make_one_key() {
    let dev = start_dev();
    for (round, body) in [
        json!({"label": "race-ec", "algorithm": "EC", "attributes": {"sign": true, "verify": true}}),
        json!({"label": "race-aes", "algorithm": "AES", "keySize": 256,
            "attributes": {"encrypt": true, "decrypt": true}}),
    ]
    .into_iter()
    .enumerate()
    {
        let replies: Vec<Reply> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|_| s.spawn(|| dev.call("POST", "/v1/key", Some(body.clone()))))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = replies.iter().filter(|r| r.status == 200).count();
        assert_eq!(ok, 1, "round {round}: {replies:#?}");
        for r in replies.iter().filter(|r| r.status != 200) {
            assert_securosys_error(r, 400, 608, &format!("round {round}"));
        }
        // A create after the race fails too.
        dev.err("POST", "/v1/key", Some(body.clone()), 400, 608);
    }
}

#[test]
fn keys_signatures_and_errors() {
    let dev = start_dev();
    let tmp = tempfile::tempdir().unwrap();
    let all = json!({"sign": true, "verify": true, "decrypt": true, "encrypt": true,
        "wrap": true, "unwrap": true, "destroyable": true, "extractable": false});

    // Service endpoints.
    assert_eq!(dev.ok("GET", "/v1/versionInfo", None)["Version"], "2.1.0");
    let lic = dev.ok("GET", "/v1/licenseInfo", None);
    assert!(lic["clientFlags"]
        .as_array()
        .unwrap()
        .contains(&json!("REST_API")));
    let r = dev.ok("GET", "/v1/generateRandom/32", None);
    assert_eq!(unb64(r["random"].as_str().unwrap()).len(), 32);
    dev.err("GET", "/v1/generateRandom/0", None, 400, 619);
    dev.err("GET", "/v1/generateRandom/abc", None, 400, 619);
    dev.err("GET", "/v1/generateRandom/1000000", None, 400, 619);
    assert_eq!(dev.ok("GET", "/v1/key", None), json!([]));
    let st = dev.ok("GET", "/v1/keystore/statistics", None);
    assert_eq!(st["keyCount"], 0);

    // EC P-256: every ECDSA variant the engine has, DER and RAW, checked with openssl.
    let ec = create(
        &dev,
        json!({"label": "ec", "algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
            "attributes": all}),
    );
    assert_eq!(ec["algorithm"], "EC");
    assert_eq!(ec["curveOid"], "1.2.840.10045.3.1.7");
    let ec_spki = ec["publicKey"].as_str().unwrap().to_owned();
    for (alg, md) in [
        ("SHA256_WITH_ECDSA", "-sha256"),
        ("SHA384_WITH_ECDSA", "-sha384"),
        ("SHA512_WITH_ECDSA", "-sha512"),
        ("SHA1_WITH_ECDSA", "-sha1"),
        ("SHA224_WITH_ECDSA", "-sha224"),
        ("SHA3256_WITH_ECDSA", "-sha3-256"),
        ("SHA256_WITH_ECDSA_DETERMINISTIC", "-sha256"),
    ] {
        let s = dev.ok(
            "POST",
            "/v1/synchronousSign",
            Some(sign_body("ec", alg, b"hello", None)),
        );
        let sig = unb64(s["signature"].as_str().unwrap());
        assert!(
            openssl_verify(tmp.path(), &ec_spki, b"hello", &sig, &[md]),
            "{alg}"
        );
        let v = dev.ok(
            "POST",
            "/v1/verify",
            Some(json!({"verifySignatureRequest": {
            "payload": b64(b"hello"), "signKeyName": "ec", "signatureAlgorithm": alg,
            "signature": b64(&sig)}})),
        );
        assert_eq!(v["signatureValid"], true, "{alg}");
    }
    let raw = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_ECDSA", b"hello", Some("RAW"))),
    );
    assert_eq!(unb64(raw["signature"].as_str().unwrap()).len(), 64);
    let v = dev.ok(
        "POST",
        "/v1/verify",
        Some(json!({"verifySignatureRequest": {
        "payload": b64(b"hello"), "signKeyName": "ec", "signatureAlgorithm": "SHA256_WITH_ECDSA",
        "signature": raw["signature"], "signatureType": "RAW"}})),
    );
    assert_eq!(v["signatureValid"], true);
    // NONE_WITH_ECDSA signs a digest.
    let digest = openssl::sha::sha256(b"hello");
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "NONE_WITH_ECDSA", &digest, None)),
    );
    assert!(openssl_verify(
        tmp.path(),
        &ec_spki,
        b"hello",
        &unb64(s["signature"].as_str().unwrap()),
        &["-sha256"]
    ));
    // RSA algorithms on an EC key, unknown algorithms, bad base64, bad key names.
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_RSA", b"x", None)),
        400,
        607,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_DSA", b"x", None)),
        400,
        611,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "NOPE_WITH_ECDSA", b"x", None)),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_ECDSA", b"x", Some("ETH"))),
        400,
        607,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("missing", "SHA256_WITH_ECDSA", b"x", None)),
        404,
        650,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(json!({"signRequest": {"payload": "%%%",
        "signKeyName": "ec", "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
        400,
        612,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(json!({"signRequest": {"payload": "AA==",
        "signKeyName": "", "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
        400,
        610,
    );
    // `ec` has no password: presenting one is a mismatch.
    dev.err("POST", "/v1/synchronousSign", Some(json!({"signRequest": {"payload": "AA==",
        "signKeyName": "ec", "keyPassword": ["a", "b"], "signatureAlgorithm": "SHA256_WITH_ECDSA"}})), 400, 620);
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(json!({"signRequest": {"payload": "AA==",
        "signKeyName": "ec", "keyPassword": ["ab"], "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(json!({"signRequest": {"signKeyName": "ec"}})),
        400,
        600,
    );
    dev.err("POST", "/v1/synchronousSign", Some(json!([1, 2])), 400, 600);
    let r = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/synchronousSign", dev.url),
        &dev.auth(),
        Some("{not json"),
    );
    assert_securosys_error(&r, 400, 600, "malformed JSON");
    let r = curl(
        &dev.ca,
        "POST",
        &format!("{}/v1/nowhere", dev.url),
        &dev.auth(),
        Some("{}"),
    );
    assert_securosys_error(&r, 404, 622, "unknown path");
    let r = curl(
        &dev.ca,
        "PUT",
        &format!("{}/v1/synchronousSign", dev.url),
        &dev.auth(),
        Some("{}"),
    );
    assert_securosys_error(&r, 405, 611, "wrong method");
    let v = dev.ok(
        "POST",
        "/v1/verify",
        Some(json!({"verifySignatureRequest": {
        "payload": b64(b"hello"), "signKeyName": "ec", "signatureAlgorithm": "SHA256_WITH_ECDSA",
        "signature": b64(b"not a signature")}})),
    );
    assert_eq!(v["signatureValid"], false);

    // Ed25519.
    let ed = create(
        &dev,
        json!({"label": "ed", "algorithm": "ED", "curveOid": "1.3.101.112",
        "attributes": {"sign": true, "verify": true}}),
    );
    assert_eq!(ed["algorithm"], "ED");
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ed", "EDDSA", b"hi", None)),
    );
    let sig = unb64(s["signature"].as_str().unwrap());
    let pk = tmp.path().join("ed.pem");
    std::fs::write(&pk, pem_public(ed["publicKey"].as_str().unwrap())).unwrap();
    std::fs::write(tmp.path().join("m"), b"hi").unwrap();
    std::fs::write(tmp.path().join("s"), &sig).unwrap();
    let o = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(&pk)
        .arg("-in")
        .arg(tmp.path().join("m"))
        .arg("-sigfile")
        .arg(tmp.path().join("s"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // RSA: PKCS#1 v1.5 and PSS variants, OAEP encryption, NONESHA256 digests.
    let rsa = create(
        &dev,
        json!({"label": "rsa", "algorithm": "RSA", "keySize": 2048, "attributes": all}),
    );
    let rsa_spki = rsa["publicKey"].as_str().unwrap().to_owned();
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("rsa", "SHA256_WITH_RSA", b"m", None)),
    );
    assert!(openssl_verify(
        tmp.path(),
        &rsa_spki,
        b"m",
        &unb64(s["signature"].as_str().unwrap()),
        &["-sha256"]
    ));
    let d = openssl::sha::sha256(b"m");
    let s2 = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("rsa", "NONESHA256_WITH_RSA", &d, None)),
    );
    assert_eq!(
        s["signature"], s2["signature"],
        "PKCS#1 v1.5 is deterministic"
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("rsa", "NONESHA256_WITH_RSA", b"short", None)),
        400,
        612,
    );
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("rsa", "SHA512_WITH_RSA_PSS", b"m", None)),
    );
    assert!(openssl_verify(
        tmp.path(),
        &rsa_spki,
        b"m",
        &unb64(s["signature"].as_str().unwrap()),
        &[
            "-sha512",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:64"
        ]
    ));
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("rsa", "NONESHA256_WITH_RSA_PSS", &d, None)),
    );
    assert!(openssl_verify(
        tmp.path(),
        &rsa_spki,
        b"m",
        &unb64(s["signature"].as_str().unwrap()),
        &[
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32"
        ]
    ));
    for alg in ["RSA_PADDING_OAEP_WITH_SHA256", "RSA_PADDING_OAEP", "RSA"] {
        let e = dev.ok(
            "POST",
            "/v1/encrypt",
            Some(json!({"encryptRequest": {"payload": b64(b"secret"),
            "encryptKeyName": "rsa", "cipherAlgorithm": alg}})),
        );
        assert!(e["initializationVector"].is_null());
        let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
            "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "rsa", "cipherAlgorithm": alg}})));
        assert_eq!(unb64(p["payload"].as_str().unwrap()), b"secret", "{alg}");
    }
    dev.err(
        "POST",
        "/v1/synchronousDecrypt",
        Some(json!({"decryptRequest": {
        "encryptedPayload": b64(&[1u8; 256]), "decryptKeyName": "rsa",
        "cipherAlgorithm": "RSA_PADDING_OAEP_WITH_SHA256"}})),
        400,
        410,
    );

    // AES-GCM: ciphertext ‖ tag with the split fields, server IV, AAD, tag lengths.
    create(
        &dev,
        json!({"label": "aes", "algorithm": "AES", "keySize": 256, "attributes": all}),
    );
    for tag in [128, 96] {
        let e = dev.ok(
            "POST",
            "/v1/encrypt",
            Some(json!({"encryptRequest": {"payload": b64(b"attack at dawn"),
            "encryptKeyName": "aes", "cipherAlgorithm": "AES_GCM", "tagLength": tag,
            "additionalAuthenticationData": b64(b"hdr")}})),
        );
        let ct = unb64(e["encryptedPayload"].as_str().unwrap());
        let body = unb64(
            e["encryptedPayloadWithoutMessageAuthenticationCode"]
                .as_str()
                .unwrap(),
        );
        let mac = unb64(e["messageAuthenticationCode"].as_str().unwrap());
        assert_eq!(mac.len(), tag / 8);
        assert_eq!([body.clone(), mac.clone()].concat(), ct);
        assert_eq!(unb64(e["initializationVector"].as_str().unwrap()).len(), 12);
        let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
            "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "aes", "cipherAlgorithm": "AES_GCM",
            "initializationVector": e["initializationVector"], "tagLength": tag,
            "additionalAuthenticationData": b64(b"hdr")}})));
        assert_eq!(unb64(p["payload"].as_str().unwrap()), b"attack at dawn");
        // Wrong AAD: the tag does not verify.
        dev.err("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
            "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "aes", "cipherAlgorithm": "AES_GCM",
            "initializationVector": e["initializationVector"], "tagLength": tag,
            "additionalAuthenticationData": b64(b"HDR")}})), 400, 410);
    }
    dev.err(
        "POST",
        "/v1/encrypt",
        Some(json!({"encryptRequest": {"payload": "AA==",
        "encryptKeyName": "aes", "cipherAlgorithm": "AES_GCM", "tagLength": 100}})),
        400,
        624,
    );
    dev.err(
        "POST",
        "/v1/synchronousDecrypt",
        Some(json!({"decryptRequest": {"encryptedPayload": "AAAA",
        "decryptKeyName": "aes", "cipherAlgorithm": "AES_GCM"}})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/encrypt",
        Some(json!({"encryptRequest": {"payload": "AA==",
        "encryptKeyName": "aes", "cipherAlgorithm": "TDEA_CBC"}})),
        400,
        629,
    );
    dev.err(
        "POST",
        "/v1/encrypt",
        Some(json!({"encryptRequest": {"payload": "AA==",
        "encryptKeyName": "aes", "cipherAlgorithm": "RSA"}})),
        400,
        607,
    );
    for alg in ["AES", "AES_CTR", "AES_CBC_NO_PADDING", "AES_ECB"] {
        let data = [7u8; 32];
        let e = dev.ok(
            "POST",
            "/v1/encrypt",
            Some(json!({"encryptRequest": {"payload": b64(&data),
            "encryptKeyName": "aes", "cipherAlgorithm": alg}})),
        );
        let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
            "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "aes", "cipherAlgorithm": alg,
            "initializationVector": e["initializationVector"]}})));
        assert_eq!(unb64(p["payload"].as_str().unwrap()), data, "{alg}");
    }

    // HMAC.
    let h = create(
        &dev,
        json!({"label": "mac", "algorithm": "HMACSHA256", "keySize": 256,
        "attributes": {"sign": true, "verify": true, "extractable": true, "sensitive": false}}),
    );
    assert_eq!(h["algorithm"], "HMACSHA256");
    let m = dev.ok(
        "POST",
        "/v1/synchronousHmac",
        Some(json!({"hmacRequest": {"keyName": "mac", "payload": b64(b"data")}})),
    );
    let mac = m["keyedHash"].as_str().unwrap().to_owned();
    assert_eq!(unb64(&mac).len(), 32);
    let v = dev.ok(
        "POST",
        "/v1/verifyHmac",
        Some(json!({"verifyHmacRequest": {"keyName": "mac",
        "payload": b64(b"data"), "signature": mac}})),
    );
    assert_eq!(v["signatureValid"], true);
    let v = dev.ok(
        "POST",
        "/v1/verifyHmac",
        Some(json!({"verifyHmacRequest": {"keyName": "mac",
        "payload": b64(b"datb"), "signature": mac}})),
    );
    assert_eq!(v["signatureValid"], false);
    dev.err(
        "POST",
        "/v1/synchronousHmac",
        Some(json!({"hmacRequest": {"keyName": "aes", "payload": "AA=="}})),
        400,
        607,
    );
    // The exported HMAC key reproduces the MAC (openssl).
    let x = dev.ok(
        "POST",
        "/v1/key/export/plain",
        Some(json!({"label": "mac", "password": null})),
    );
    let k = unb64(x["secretKey"].as_str().unwrap());
    let pkey = openssl::pkey::PKey::hmac(&k).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
    signer.update(b"data").unwrap();
    assert_eq!(b64(&signer.sign_to_vec().unwrap()), mac);
    // Sensitive keys do not export.
    dev.err(
        "POST",
        "/v1/key/export/plain",
        Some(json!({"label": "aes", "password": null})),
        400,
        614,
    );
    dev.err(
        "POST",
        "/v1/key/export/plain",
        Some(json!({"label": "rsa"})),
        400,
        614,
    );

    // Wrap / unwrap: AES wraps an extractable AES key; RSA-OAEP wraps it too.
    create(
        &dev,
        json!({"label": "kek", "algorithm": "AES", "keySize": 256,
        "attributes": {"wrap": true, "unwrap": true, "encrypt": true, "decrypt": true}}),
    );
    create(
        &dev,
        json!({"label": "dek", "algorithm": "AES", "keySize": 128,
        "attributes": {"encrypt": true, "decrypt": true, "extractable": true, "destroyable": true}}),
    );
    for (method, kek) in [
        ("AES_WRAP", "kek"),
        ("AES_WRAP_PAD", "kek"),
        ("RSA_WRAP_OAEP", "rsa"),
    ] {
        let w = dev.ok(
            "POST",
            "/v1/wrap",
            Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
            "wrapKeyName": kek, "wrapMethod": method}})),
        );
        let label = format!("dek-{method}");
        let r = dev.call("POST", "/v1/synchronousUnwrap", Some(json!({"unwrapKeyRequest": {
            "wrappedKey": w["wrappedKey"], "label": label, "unwrapKeyName": kek, "wrapMethod": method,
            "attributes": {"encrypt": true, "decrypt": true}, "policy": null}})));
        assert_eq!(r.status, 200, "{method}: {}", r.body);
        // The unwrapped key decrypts what the original encrypted.
        let e = dev.ok(
            "POST",
            "/v1/encrypt",
            Some(json!({"encryptRequest": {"payload": b64(b"x"),
            "encryptKeyName": "dek", "cipherAlgorithm": "AES_GCM"}})),
        );
        let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
            "encryptedPayload": e["encryptedPayload"], "decryptKeyName": label, "cipherAlgorithm": "AES_GCM",
            "initializationVector": e["initializationVector"]}})));
        assert_eq!(unb64(p["payload"].as_str().unwrap()), b"x", "{method}");
        // Unwrapping again under the same name: 701, as the TSB.
        let again = dev.call("POST", "/v1/synchronousUnwrap", Some(json!({"unwrapKeyRequest": {
            "wrappedKey": w["wrappedKey"], "label": label, "unwrapKeyName": kek, "wrapMethod": method}})));
        assert_securosys_error(&again, 500, 701, "unwrap to an existing name");
    }
    // ML-KEM-768 wraps an AES key.
    create(
        &dev,
        json!({"label": "kem", "algorithm": "ML-KEM-768", "attributes": {"wrap": true, "unwrap": true}}),
    );
    let w = dev.ok(
        "POST",
        "/v1/wrap",
        Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
        "wrapKeyName": "kem", "wrapMethod": "ML-KEM-768"}})),
    );
    let r = dev.call("POST", "/v1/synchronousUnwrap", Some(json!({"unwrapKeyRequest": {
        "wrappedKey": w["wrappedKey"], "label": "dek-kem", "unwrapKeyName": "kem", "wrapMethod": "ML-KEM-768",
        "attributes": {"encrypt": true, "decrypt": true}}})));
    assert_eq!(r.status, 200, "ML-KEM unwrap: {}", r.body);
    let e = dev.ok(
        "POST",
        "/v1/encrypt",
        Some(json!({"encryptRequest": {"payload": b64(b"k"),
        "encryptKeyName": "dek-kem", "cipherAlgorithm": "AES_GCM"}})),
    );
    let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
        "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "dek", "cipherAlgorithm": "AES_GCM",
        "initializationVector": e["initializationVector"]}})));
    assert_eq!(unb64(p["payload"].as_str().unwrap()), b"k");
    // ChaCha20-Poly1305.
    create(
        &dev,
        json!({"label": "cc", "algorithm": "ChaCha20", "attributes": {"encrypt": true, "decrypt": true}}),
    );
    let e = dev.ok("POST", "/v1/encrypt", Some(json!({"encryptRequest": {"payload": b64(b"chacha"),
        "encryptKeyName": "cc", "cipherAlgorithm": "CHACHA20_AEAD", "additionalAuthenticationData": b64(b"a")}})));
    assert_eq!(
        unb64(e["messageAuthenticationCode"].as_str().unwrap()).len(),
        16
    );
    let p = dev.ok("POST", "/v1/synchronousDecrypt", Some(json!({"decryptRequest": {
        "encryptedPayload": e["encryptedPayload"], "decryptKeyName": "cc", "cipherAlgorithm": "CHACHA20_AEAD",
        "initializationVector": e["initializationVector"], "additionalAuthenticationData": b64(b"a")}})));
    assert_eq!(unb64(p["payload"].as_str().unwrap()), b"chacha");

    // A non-extractable key cannot be wrapped; a bad wrapped blob is refused.
    dev.err(
        "POST",
        "/v1/wrap",
        Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "aes",
        "wrapKeyName": "kek", "wrapMethod": "AES_WRAP"}})),
        400,
        614,
    );
    dev.err(
        "POST",
        "/v1/wrap",
        Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
        "wrapKeyName": "kek", "wrapMethod": "AES_WRAP_DSA"}})),
        400,
        611,
    );
    dev.err(
        "POST",
        "/v1/wrap",
        Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
        "wrapKeyName": "rsa", "wrapMethod": "RSA_WRAP_PAD"}})),
        400,
        611,
    );
    dev.err(
        "POST",
        "/v1/wrap",
        Some(json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
        "wrapKeyName": "rsa", "wrapMethod": "AES_WRAP"}})),
        400,
        607,
    );
    let bad = dev.call("POST", "/v1/synchronousUnwrap", Some(json!({"unwrapKeyRequest": {
        "wrappedKey": b64(&[0u8; 40]), "label": "bad", "unwrapKeyName": "kek", "wrapMethod": "AES_WRAP"}})));
    assert!(bad.status == 400 || bad.status == 500, "{}", bad.body);
    assert!(bad.json["errorCode"].is_u64(), "{}", bad.body);

    // Smart Key Attributes: a key with null rules blocks and unblocks synchronously; a blocked
    // key refuses to sign; a key whose use needs an approval refuses (fail-closed).
    let ska = create(
        &dev,
        json!({"label": "ska", "algorithm": "EC", "attributes": {"sign": true, "verify": true},
        "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
            "keyStatus": {"blocked": false}}}),
    );
    assert_eq!(ska["policy"]["keyStatus"]["blocked"], false);
    dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ska", "SHA256_WITH_ECDSA", b"1", None)),
    );
    dev.ok(
        "POST",
        "/v1/synchronousBlock",
        Some(json!({"blockRequest": {"blockKeyName": "ska"}})),
    );
    let r = dev.call(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ska", "SHA256_WITH_ECDSA", b"1", None)),
    );
    assert_securosys_error(&r, 400, 400, "sign with a blocked key");
    // The key is named by its REST name, never by the engine's internal object id.
    assert_eq!(r.json["message"], "key \"ska\" is blocked", "{}", r.body);
    let a = dev.ok("POST", "/v1/key/attributes", Some(json!({"label": "ska"})));
    assert_eq!(a["json"]["policy"]["keyStatus"]["blocked"], true);
    let r = dev.call(
        "POST",
        "/v1/unblock",
        Some(json!({"unblockRequest": {"unblockKeyName": "ska"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json["unblockKeyRequestId"].is_string(), "{}", r.body);
    dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ska", "SHA256_WITH_ECDSA", b"1", None)),
    );
    let approver = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let approver = b64(&approver.public_key_to_der().unwrap());
    create(
        &dev,
        json!({"label": "ska-approved", "algorithm": "EC", "attributes": {"sign": true},
        "policy": {"ruleUse": {"tokens": [{"name": "t", "timelock": 0, "timeout": 0, "groups": [
            {"name": "g", "quorum": 1, "approvals": [{"type": "public_key", "name": "a", "value": approver}]}]}]},
            "keyStatus": {"blocked": false}}}),
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ska-approved", "SHA256_WITH_ECDSA", b"1", None)),
        400,
        400,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(
            json!({"label": "ska-bad", "algorithm": "EC", "policy": {"ruleUse":
        {"tokens": [{"name": "t", "groups": [{"name": "g", "quorum": 1, "approvals":
        [{"type": "public_key", "value": "AAAA"}]}]}]}}}),
        ),
        400,
        606,
    );

    // Block / unblock: a key without a policy is not an SKA key; the engine decides.
    let b = dev.call(
        "POST",
        "/v1/synchronousBlock",
        Some(json!({"blockRequest": {"blockKeyName": "ec"}})),
    );
    assert!(
        b.json["errorCode"].is_u64() || b.status == 200,
        "{}",
        b.body
    );
    dev.err(
        "POST",
        "/v1/synchronousBlock",
        Some(json!({"blockRequest": {"blockKeyName": "nope"}})),
        404,
        650,
    );
    dev.err(
        "POST",
        "/v1/synchronousUnblock",
        Some(json!({"unblockRequest": {"unblockKeyName": "nope"}})),
        404,
        650,
    );

    // Key creation errors.
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "r", "algorithm": "RSA", "keySize": 1000})),
        400,
        603,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "a", "algorithm": "AES", "keySize": 100})),
        400,
        603,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "d", "algorithm": "DSA", "keySize": 2048})),
        400,
        611,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "x", "algorithm": "FOO"})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "e", "algorithm": "EC", "curveOid": "1.2.3"})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "e", "algorithm": "EC", "curveOid": "nonsense"})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "p", "algorithm": "AES", "password": ["pw"]})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "b", "algorithm": "EC", "attributes": {"bip32": true}})),
        400,
        606,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "", "algorithm": "AES"})),
        400,
        610,
    );
    dev.err(
        "POST",
        "/v1/key",
        Some(json!({"label": "q", "algorithm": "AES", "policy": "yes"})),
        400,
        600,
    );

    // Post-quantum keys the engine offers.
    let ml = create(
        &dev,
        json!({"label": "mldsa", "algorithm": "ML-DSA-65", "attributes": {"sign": true, "verify": true}}),
    );
    assert_eq!(ml["algorithm"], "ML-DSA-65");
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("mldsa", "ML_DSA", b"pq", None)),
    );
    assert_eq!(unb64(s["signature"].as_str().unwrap()).len(), 3309);
    let v = dev.ok(
        "POST",
        "/v1/verify",
        Some(json!({"verifySignatureRequest": {"payload": b64(b"pq"),
        "signKeyName": "mldsa", "signatureAlgorithm": "ML_DSA", "signature": s["signature"]}})),
    );
    assert_eq!(v["signatureValid"], true);

    // Import: a public key (verify only), a private key with its public key, a secret key.
    let pkey = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let pkey = openssl::pkey::PKey::from_ec_key(pkey).unwrap();
    let spki = b64(&pkey.public_key_to_der().unwrap());
    let pk8 = b64(&pkey.private_key_to_pkcs8().unwrap());
    let imp = dev.ok(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "imp", "algorithm": "EC",
        "privateKey": pk8, "publicKey": spki, "attributes": {"sign": true, "verify": true}})),
    );
    assert_eq!(imp["json"]["publicKey"], json!(spki));
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("imp", "SHA256_WITH_ECDSA", b"z", None)),
    );
    assert!(openssl_verify(
        tmp.path(),
        &spki,
        b"z",
        &unb64(s["signature"].as_str().unwrap()),
        &["-sha256"]
    ));
    dev.err(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "imp", "privateKey": pk8, "publicKey": spki})),
        400,
        608,
    );
    dev.ok(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "pubonly", "publicKey": ec_spki,
        "attributes": {"verify": true}})),
    );
    let s = dev.ok(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_ECDSA", b"w", None)),
    );
    let v = dev.ok("POST", "/v1/verify", Some(json!({"verifySignatureRequest": {"payload": b64(b"w"),
        "signKeyName": "pubonly", "signatureAlgorithm": "SHA256_WITH_ECDSA", "signature": s["signature"]}})));
    assert_eq!(v["signatureValid"], true);
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("pubonly", "SHA256_WITH_ECDSA", b"w", None)),
        400,
        614,
    );
    dev.ok(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "sk", "algorithm": "AES",
        "secretKey": b64(&[9u8; 32]), "attributes": {"encrypt": true, "decrypt": true}})),
    );
    dev.err(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "nothing"})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "junk", "publicKey": b64(b"junk")})),
        400,
        625,
    );

    // Certificates: self-signed (stored), CSR, issue from a CSR, import, get, delete.
    let ss = dev.ok(
        "POST",
        "/v1/certificate/synchronous/selfsign",
        Some(json!({"signKeyName": "ec",
        "signatureAlgorithm": "SHA256_WITH_ECDSA", "commonName": "Tresor Test CA", "validity": 30,
        "certificateAuthority": true, "keyUsage": ["KEY_CERT_SIGN", "CRL_SIGN"]})),
    );
    let ca_pem = ss["certificate"].as_str().unwrap().to_owned();
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let o = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_file)
        .arg(&ca_file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "self-signed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let csr = dev.ok("POST", "/v1/certificate/synchronous/request", Some(json!({"signKeyName": "rsa",
        "signatureAlgorithm": "SHA256_WITH_RSA", "validity": 10,
        "standardCertificateAttributes": {"commonName": "leaf.example", "country": "CH", "organizationName": "Tresor"},
        "keyUsage": ["DIGITAL_SIGNATURE"], "extendedKeyUsage": ["SERVER_AUTH"]})));
    let csr_pem = csr["certificateSigningRequest"]
        .as_str()
        .unwrap()
        .to_owned();
    let csr_file = tmp.path().join("req.pem");
    std::fs::write(&csr_file, &csr_pem).unwrap();
    let o = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-in"])
        .arg(&csr_file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "CSR: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The key now holds a self-signed certificate of the CSR's subject, KeyUsage critical,
    // for the key's own public key (compat §1.10).
    let held = dev.ok("GET", "/v1/certificate/rsa", None);
    let held_der = tmp.path().join("held.der");
    std::fs::write(&held_der, unb64(held["certificate"].as_str().unwrap())).unwrap();
    let text = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&held_der)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("Subject: C = CH, O = Tresor, CN = leaf.example")
            || text.contains("CN = leaf.example"),
        "{text}"
    );
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let issuer = text
        .lines()
        .find(|l| l.trim().starts_with("Issuer:"))
        .unwrap()
        .trim()
        .trim_start_matches("Issuer:")
        .to_owned();
    let subject = text
        .lines()
        .find(|l| l.trim().starts_with("Subject:"))
        .unwrap()
        .trim()
        .trim_start_matches("Subject:")
        .to_owned();
    assert_eq!(issuer, subject, "self-signed");
    let held_pub = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-pubkey", "-in"])
        .arg(&held_der)
        .output()
        .unwrap();
    let rsa_spki = dev.ok("POST", "/v1/key/attributes", Some(json!({"label": "rsa"})))["json"]
        ["publicKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        String::from_utf8_lossy(&held_pub.stdout).replace('\n', ""),
        pem_public(&rsa_spki).replace('\n', "")
    );
    let issued = dev.ok("POST", "/v1/certificate/synchronous/sign", Some(json!({"signKeyName": "ec",
        "signatureAlgorithm": "SHA256_WITH_ECDSA", "validity": 10, "certificateSigningRequest": csr_pem})));
    let leaf = tmp.path().join("leaf.pem");
    std::fs::write(&leaf, issued["certificate"].as_str().unwrap()).unwrap();
    let o = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca_file)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "issued: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    dev.err(
        "POST",
        "/v1/certificate/synchronous/sign",
        Some(json!({"signKeyName": "ed",
        "signatureAlgorithm": "EDDSA", "certificateSigningRequest": csr_pem})),
        400,
        613,
    );
    dev.err(
        "POST",
        "/v1/certificate/synchronous/sign",
        Some(json!({"signKeyName": "ec",
        "signatureAlgorithm": "SHA256_WITH_ECDSA", "certificateSigningRequest": "garbage"})),
        400,
        628,
    );
    dev.err(
        "POST",
        "/v1/certificate/synchronous/selfsign",
        Some(json!({"signKeyName": "ec",
        "signatureAlgorithm": "SHA224_WITH_RSA", "commonName": "x"})),
        400,
        607,
    );
    let leaf_der =
        openssl::x509::X509::from_pem(issued["certificate"].as_str().unwrap().as_bytes())
            .unwrap()
            .to_der()
            .unwrap();
    dev.ok(
        "POST",
        "/v1/certificate/import/plain",
        Some(json!({"label": "rsa", "certificate": b64(&leaf_der)})),
    );
    let got = dev.ok("GET", "/v1/certificate/rsa", None);
    assert_eq!(got["certificate"], json!(b64(&leaf_der)));
    dev.ok("DELETE", "/v1/certificate/rsa", None);
    dev.err("GET", "/v1/certificate/rsa", None, 404, 650);
    dev.err(
        "POST",
        "/v1/certificate/import/plain",
        Some(json!({"label": "rsa", "certificate": b64(b"nope")})),
        400,
        626,
    );

    // Listing, attributes, password changes, deletion.
    let names = dev.ok("GET", "/v1/key", None);
    for n in [
        "ec", "ed", "rsa", "aes", "mac", "kek", "dek", "mldsa", "imp", "pubonly", "sk",
    ] {
        assert!(
            names.as_array().unwrap().contains(&json!(n)),
            "{n} not listed: {names}"
        );
    }
    let a = dev.ok(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "ec", "password": null})),
    );
    assert_eq!(a["json"]["publicKey"], json!(ec_spki));
    assert!(a["json"]["keyUsageCount"].as_i64().unwrap() > 0);
    let a2 = dev.ok("GET", "/v1/key/ec/attributes", None);
    assert_eq!(a2["json"]["uuid"], a["json"]["uuid"]);
    dev.err(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "nope"})),
        404,
        650,
    );
    dev.err(
        "POST",
        "/v1/key/changePassword",
        Some(json!({"label": "ec", "password": ["x"], "newPassword": ["a"]})),
        400,
        620,
    );
    dev.err(
        "POST",
        "/v1/key/changePassword",
        Some(json!({"label": "nope", "newPassword": ["a"]})),
        404,
        650,
    );
    // `kek` was created without destroyable: the engine refuses, and the key stays.
    let r = dev.call("DELETE", "/v1/key/kek", None);
    assert_securosys_error(&r, 400, 614, "delete a non-destroyable key");
    assert!(dev
        .ok("GET", "/v1/key", None)
        .as_array()
        .unwrap()
        .contains(&json!("kek")));
    dev.ok("DELETE", "/v1/key/ec", None);
    dev.ok(
        "POST",
        "/v1/key/deleteKey",
        Some(json!({"label": "dek", "password": null})),
    );
    dev.err("DELETE", "/v1/key/ec", None, 404, 650);
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("ec", "SHA256_WITH_ECDSA", b"x", None)),
        404,
        650,
    );
    let st = dev.ok("GET", "/v1/keystore/statistics", None);
    assert!(st["keyCount"].as_u64().unwrap() >= 8, "{st}");

    // Health, readiness, the OpenAPI document and the offline Swagger UI need no credentials.
    let none: Vec<String> = Vec::new();
    assert_eq!(
        curl(&dev.ca, "GET", &format!("{}/health", dev.url), &none, None).json["status"],
        "UP"
    );
    assert_eq!(
        curl(&dev.ca, "GET", &format!("{}/ready", dev.url), &none, None).json["status"],
        "UP"
    );
    let doc = curl(
        &dev.ca,
        "GET",
        &format!("{}/v3/api-docs", dev.url),
        &none,
        None,
    );
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.1.0");
    for p in [
        "/v1/key",
        "/v1/synchronousSign",
        "/v1/encrypt",
        "/v1/synchronousDecrypt",
        "/v1/wrap",
        "/v1/synchronousUnwrap",
        "/v1/request/{id}",
        "/v1/certificate/synchronous/request",
    ] {
        assert!(doc.json["paths"][p].is_object(), "{p} not documented");
    }
    // The asynchronous forms: each its own entry, answering 201 with its request id.
    for (p, id) in [
        ("/v1/sign", "signRequestId"),
        ("/v1/unwrap", "unwrapRequestId"),
        ("/v1/block", "blockKeyRequestId"),
        ("/v1/modify", "modifyKeyRequestId"),
        ("/v1/unblock", "unblockKeyRequestId"),
    ] {
        let post = &doc.json["paths"][p]["post"];
        assert!(
            post["summary"]
                .as_str()
                .unwrap_or("")
                .contains("asynchronous form"),
            "{p}: {post}"
        );
        let body = post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or("");
        let schema = body.rsplit('/').next().unwrap_or("");
        assert!(
            doc.json["components"]["schemas"][schema]["properties"][id].is_object(),
            "{p}: 201 body {body} has no {id}"
        );
    }
    let ex = doc.json["components"]["schemas"]["SignBody"]["example"].to_string();
    assert!(
        ex.contains("UGF5bG9hZA==") && ex.contains("SHA224_WITH_RSA_PSS"),
        "{ex}"
    );
    let ex = doc.json["components"]["schemas"]["CreateKeyRequest"]["example"].to_string();
    assert!(ex.contains("TSB_KEY_TEST"), "{ex}");
    let ui = curl(
        &dev.ca,
        "GET",
        &format!("{}/swagger-ui/index.html", dev.url),
        &none,
        None,
    );
    assert_eq!(ui.status, 200);
    assert!(
        ui.body.contains("swagger"),
        "{}",
        &ui.body[..ui.body.len().min(200)]
    );
    let init = curl(
        &dev.ca,
        "GET",
        &format!("{}/swagger-ui/swagger-initializer.js", dev.url),
        &none,
        None,
    );
    assert!(init.body.contains("/v3/api-docs"), "{}", init.body);
    let js = curl(
        &dev.ca,
        "GET",
        &format!("{}/swagger-ui/swagger-ui-bundle.js", dev.url),
        &none,
        None,
    );
    assert_eq!(js.status, 200);
    assert!(
        js.body.len() > 100_000,
        "the UI bundle is served from the binary"
    );
}

/// A JWT signed with the dev key (Ed25519) over arbitrary header and claims.
fn ed25519_jwt(key_pem: &[u8], header: &Value, claims: &Value) -> String {
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", e(header), e(claims));
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem).unwrap();
    let mut s = openssl::sign::Signer::new_without_digest(&key).unwrap();
    let sig = s.sign_oneshot_to_vec(input.as_bytes()).unwrap();
    format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn authentication_failure_modes() {
    let dev = start_dev();
    let key_pem = std::fs::read(dev.dir.path().join("d/rest-jwt.key")).unwrap();
    let pub_pem = std::fs::read(dev.dir.path().join("d/rest-jwt.pub")).unwrap();
    let url = format!("{}/v1/versionInfo", dev.url);
    let api = format!("X-API-KEY: {}", dev.api_key);
    let get = |headers: &[String]| curl(&dev.ca, "GET", &url, headers, None);
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let claims = |exp: i64, nbf: i64, aud: &str| {
        json!({"sub": "t", "tenant": "dev", "partition": "dev", "aud": aud,
            "exp": (now() as i64 + exp), "nbf": (now() as i64 + nbf), "iat": now()})
    };
    let hdr = json!({"alg": "EdDSA", "typ": "JWT"});

    // The curl line `tresor dev` prints works as printed.
    let line = dev
        .printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("try"))
        .expect("a curl line")
        .trim()
        .to_owned();
    assert!(line.starts_with("curl "), "{line}");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("{line} -sS"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        r#"{"Version":"2.1.0"}"#
    );

    // Good: the printed token and key; a fresh token made by hand with the same key.
    assert_eq!(get(&[bearer(&dev.jwt), api.clone()]).status, 200);
    let fresh = ed25519_jwt(&key_pem, &hdr, &claims(600, 0, "tresor-rest"));
    assert_eq!(get(&[bearer(&fresh), api.clone()]).status, 200);
    // `tresor admin token issue` makes working tokens too.
    let o = Command::new(TRESOR)
        .args(["admin", "token", "issue", "--key"])
        .arg(dev.dir.path().join("d/rest-jwt.key"))
        .args(["--tenant", "dev", "--partition", "dev", "--ttl", "60"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let issued = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(get(&[bearer(&issued), api.clone()]).status, 200);

    // JWT failures: each a 401 with the Securosys body.
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            ed25519_jwt(&key_pem, &hdr, &claims(-120, -600, "tresor-rest")),
        ),
        (
            "not yet valid",
            ed25519_jwt(&key_pem, &hdr, &claims(3600, 600, "tresor-rest")),
        ),
        (
            "wrong audience",
            ed25519_jwt(&key_pem, &hdr, &claims(600, 0, "someone-else")),
        ),
        (
            "no audience",
            ed25519_jwt(
                &key_pem,
                &hdr,
                &json!({"sub": "t", "tenant": "dev",
            "partition": "dev", "exp": now() + 600, "nbf": now(), "iat": now()}),
            ),
        ),
        (
            "other tenant",
            ed25519_jwt(
                &key_pem,
                &hdr,
                &json!({"sub": "t", "tenant": "other",
            "partition": "dev", "aud": "tresor-rest", "exp": now() + 600, "nbf": now(), "iat": now()}),
            ),
        ),
        (
            "other partition",
            ed25519_jwt(
                &key_pem,
                &hdr,
                &json!({"sub": "t", "tenant": "dev",
            "partition": "other", "aud": "tresor-rest", "exp": now() + 600, "nbf": now(), "iat": now()}),
            ),
        ),
        ("malformed", "abc.def".to_owned()),
        ("garbage", "!!!".to_owned()),
    ];
    for (what, t) in &cases {
        let r = get(&[bearer(t), api.clone()]);
        assert_securosys_error(&r, 401, 617, what);
    }
    // Another signer's key.
    let other = openssl::pkey::PKey::generate_ed25519().unwrap();
    let other_pem = other.private_key_to_pem_pkcs8().unwrap();
    let t = ed25519_jwt(&other_pem, &hdr, &claims(600, 0, "tresor-rest"));
    assert_securosys_error(&get(&[bearer(&t), api.clone()]), 401, 617, "foreign signer");
    // alg none.
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        e(&json!({"alg": "none", "typ": "JWT"})),
        e(&claims(600, 0, "tresor-rest"))
    );
    assert_securosys_error(&get(&[bearer(&none), api.clone()]), 401, 617, "alg none");
    // Algorithm confusion: HS256 keyed with the public key's PEM bytes.
    let input = format!(
        "{}.{}",
        e(&json!({"alg": "HS256", "typ": "JWT"})),
        e(&claims(600, 0, "tresor-rest"))
    );
    let hk = openssl::pkey::PKey::hmac(&pub_pem).unwrap();
    let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &hk).unwrap();
    s.update(input.as_bytes()).unwrap();
    let hs = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.sign_to_vec().unwrap())
    );
    assert_securosys_error(
        &get(&[bearer(&hs), api.clone()]),
        401,
        617,
        "HS256 confusion",
    );
    // A valid signature with a forged header alg (EdDSA signature, header ES256).
    let t = ed25519_jwt(
        &key_pem,
        &json!({"alg": "ES256", "typ": "JWT"}),
        &claims(600, 0, "tresor-rest"),
    );
    assert_securosys_error(&get(&[bearer(&t), api.clone()]), 401, 617, "alg switch");
    // Not a bearer scheme.
    assert_securosys_error(
        &get(&["Authorization: Basic Zm9vOmJhcg==".to_owned(), api.clone()]),
        401,
        617,
        "basic",
    );

    // API keys: missing → 416 (HTTP 400), wrong → 401 + 631, no credentials at all → 401/406.
    assert_securosys_error(&get(&[bearer(&dev.jwt)]), 400, 416, "missing API key");
    assert_securosys_error(
        &get(&[bearer(&dev.jwt), "X-API-KEY: tsb-x-token_wrong".into()]),
        401,
        631,
        "wrong API key",
    );
    assert_securosys_error(
        &get(&["X-API-KEY: tsb-x-token_wrong".into()]),
        401,
        631,
        "wrong API key alone",
    );
    assert_securosys_error(&get(&[]), 401, 406, "no credentials");
    // The API key alone identifies the tenant.
    assert_eq!(get(std::slice::from_ref(&api)).status, 200);
    // Public endpoints need nothing.
    assert_eq!(
        curl(&dev.ca, "GET", &format!("{}/health", dev.url), &[], None).status,
        200
    );
    // Plain HTTP is not served.
    let o = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(dev.url.replace("https://", "http://") + "/health")
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&o.stdout).trim(), "200");
}

/// schemathesis (PyPI) in a venv under target/, against the served document.
#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/rest-venv");
    let st = target.join("bin/schemathesis");
    if !st.exists() {
        let o = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&target)
            .output()
            .expect("python3 (scripts/setup.sh installs it)");
        assert!(
            o.status.success(),
            "python3 -m venv: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new(target.join("bin/pip"))
            .args(["install", "-q", "schemathesis"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pip install schemathesis: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let dev = start_dev();
    // Some keys for the generated requests to find.
    dev.ok(
        "POST",
        "/v1/key",
        Some(serde_json::from_str(SEED_CREATE).unwrap()),
    );
    let start = Instant::now();
    let cwd = tempfile::tempdir().unwrap();
    let o = Command::new(&st)
        .current_dir(cwd.path())
        .args([
            "run",
            &format!("{}/v3/api-docs", dev.url),
            "--url",
            &dev.url,
        ])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        .args([
            "--max-examples",
            "25",
            "--request-timeout",
            "60",
            "--tls-verify",
        ])
        .arg(&dev.ca)
        .args(["-H", &format!("Authorization: Bearer {}", dev.jwt)])
        .args(["-H", &format!("X-API-KEY: {}", dev.api_key)])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "schemathesis failed after {:?}:\n{out}",
        start.elapsed()
    );
}

fn pw(s: &str) -> Value {
    json!(s.chars().map(|c| c.to_string()).collect::<Vec<_>>())
}

/// Per-key passwords: a key created (or imported) with a password needs it for every use,
/// from every endpoint; wrong ones are 620 and lock the key's password after 10 in a row.
#[test]
fn key_passwords_protect_every_use() {
    let dev = start_dev();
    let tmp = tempfile::tempdir().unwrap();
    let j = create(
        &dev,
        json!({"label": "pk", "algorithm": "EC", "password": pw("sec-ret"),
            "attributes": {"sign": true, "verify": true, "destroyable": true}}),
    );
    let spki = j["publicKey"].as_str().unwrap().to_owned();
    let sign = |password: Option<Value>| {
        let mut b = sign_body("pk", "SHA256_WITH_ECDSA", b"pay", None);
        if let Some(p) = password {
            b["signRequest"]["keyPassword"] = p;
        }
        dev.call("POST", "/v1/synchronousSign", Some(b))
    };
    assert_securosys_error(&sign(None), 400, 620, "sign without the password");
    assert_securosys_error(&sign(Some(pw("wrong"))), 400, 620, "wrong password");
    assert_securosys_error(&sign(Some(json!("sec-ret"))), 400, 600, "not an array");
    let r = sign(Some(pw("sec-ret")));
    assert_eq!(r.status, 200, "{}", r.body);
    let sig = unb64(r.json["signature"].as_str().unwrap());
    assert!(openssl_verify(
        tmp.path(),
        &spki,
        b"pay",
        &sig,
        &["-sha256"]
    ));
    // The message names the key, never an object id.
    let m = sign(None).json["message"].as_str().unwrap().to_owned();
    assert!(m.contains("\"pk\""), "{m}");
    // Verify with the public half needs none; a wrong masterKeyPassword is still refused.
    let verify = |password: Value| {
        dev.call(
            "POST",
            "/v1/verify",
            Some(
                json!({"verifySignatureRequest": {"payload": b64(b"pay"), "signKeyName": "pk",
                "signatureAlgorithm": "SHA256_WITH_ECDSA", "signature": b64(&sig),
                "masterKeyPassword": password}}),
            ),
        )
    };
    assert_eq!(verify(Value::Null).json["signatureValid"], json!(true));
    assert_eq!(verify(pw("sec-ret")).json["signatureValid"], json!(true));
    assert_securosys_error(&verify(pw("nope")), 400, 620, "verify, wrong password");
    // Attributes and attestation: POST with the password; the password-less GET is refused.
    dev.err(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "pk"})),
        400,
        620,
    );
    let a = dev.ok(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "pk", "password": pw("sec-ret")})),
    );
    assert_eq!(a["json"]["publicKey"], json!(spki));
    dev.err("GET", "/v1/key/pk/attributes", None, 400, 620);
    // Certificates are signed with the key: its password goes with them.
    let ss = json!({"signKeyName": "pk", "commonName": "pk", "signatureAlgorithm": "SHA256_WITH_ECDSA",
        "validity": 30});
    dev.err(
        "POST",
        "/v1/certificate/synchronous/selfsign",
        Some(ss.clone()),
        400,
        620,
    );
    let mut ss_ok = ss.clone();
    ss_ok["keyPassword"] = pw("sec-ret");
    dev.ok("POST", "/v1/certificate/synchronous/selfsign", Some(ss_ok));

    // Change: the current password is needed; afterwards only the new one works.
    dev.err(
        "POST",
        "/v1/key/changePassword",
        Some(json!({"label": "pk", "password": pw("bad"), "newPassword": pw("n3w")})),
        400,
        620,
    );
    dev.ok(
        "POST",
        "/v1/key/changePassword",
        Some(json!({"label": "pk", "password": pw("sec-ret"), "newPassword": pw("n3w")})),
    );
    assert_securosys_error(&sign(Some(pw("sec-ret"))), 400, 620, "old password");
    assert_eq!(sign(Some(pw("n3w"))).status, 200);

    // A secret key: encrypt and decrypt with keyPassword; export with password.
    create(
        &dev,
        json!({"label": "pk-aes", "algorithm": "AES", "keySize": 256, "password": pw("a€s"),
            "attributes": {"encrypt": true, "decrypt": true, "sensitive": false, "extractable": true}}),
    );
    let enc = |password: Value| {
        dev.call(
            "POST",
            "/v1/encrypt",
            Some(
                json!({"encryptRequest": {"payload": b64(b"plain"), "encryptKeyName": "pk-aes",
                "cipherAlgorithm": "AES_GCM", "keyPassword": password}}),
            ),
        )
    };
    assert_securosys_error(&enc(Value::Null), 400, 620, "encrypt without");
    let e = enc(pw("a€s"));
    assert_eq!(e.status, 200, "{}", e.body);
    let d = dev.call(
        "POST",
        "/v1/synchronousDecrypt",
        Some(
            json!({"decryptRequest": {"encryptedPayload": e.json["encryptedPayload"],
            "decryptKeyName": "pk-aes", "cipherAlgorithm": "AES_GCM",
            "initializationVector": e.json["initializationVector"], "keyPassword": pw("a€s")}}),
        ),
    );
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(unb64(d.json["payload"].as_str().unwrap()), b"plain");
    dev.err(
        "POST",
        "/v1/key/export/plain",
        Some(json!({"label": "pk-aes"})),
        400,
        620,
    );
    let x = dev.ok(
        "POST",
        "/v1/key/export/plain",
        Some(json!({"label": "pk-aes", "password": pw("a€s")})),
    );
    assert_eq!(unb64(x["secretKey"].as_str().unwrap()).len(), 32);

    // Wrap needs the wrapping key's and the wrapped key's passwords.
    create(
        &dev,
        json!({"label": "pk-kek", "algorithm": "AES", "keySize": 256, "password": pw("kek"),
            "attributes": {"wrap": true, "unwrap": true}}),
    );
    let wrap = |kek_pw: Value, key_pw: Value| {
        dev.call(
            "POST",
            "/v1/wrap",
            Some(
                json!({"wrapKeyRequest": {"keyToBeWrapped": "pk-aes", "wrapKeyName": "pk-kek",
                "wrapMethod": "AES_WRAP_PAD", "wrapKeyPassword": kek_pw,
                "keyToBeWrappedPassword": key_pw}}),
            ),
        )
    };
    assert_securosys_error(
        &wrap(pw("kek"), Value::Null),
        400,
        620,
        "no target password",
    );
    assert_securosys_error(&wrap(Value::Null, pw("a€s")), 400, 620, "no kek password");
    let w = wrap(pw("kek"), pw("a€s"));
    assert_eq!(w.status, 200, "{}", w.body);
    // Unwrap with the kek's password.
    let unwrap =
        |kek_pw: Value| {
            dev.call(
            "POST",
            "/v1/synchronousUnwrap",
            Some(json!({"unwrapKeyRequest": {"wrappedKey": w.json["wrappedKey"], "label": "pk-back",
                "unwrapKeyName": "pk-kek", "wrapMethod": "AES_WRAP_PAD",
                "unwrapKeyPassword": kek_pw, "attributes": {"encrypt": true, "decrypt": true}}})),
        )
        };
    assert_securosys_error(&unwrap(Value::Null), 400, 620, "unwrap without");
    assert_eq!(unwrap(pw("kek")).status, 200);

    // Import with a password.
    let r = dev.call(
        "POST",
        "/v1/key/import/plain",
        Some(
            json!({"label": "pk-imp", "algorithm": "AES", "secretKey": b64(&[9u8; 32]),
            "password": pw("imp"), "attributes": {"encrypt": true, "decrypt": true}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let imp = |password: Value| {
        dev.call(
            "POST",
            "/v1/encrypt",
            Some(
                json!({"encryptRequest": {"payload": b64(b"x"), "encryptKeyName": "pk-imp",
                "cipherAlgorithm": "AES_GCM", "keyPassword": password}}),
            ),
        )
    };
    assert_securosys_error(&imp(Value::Null), 400, 620, "imported key without");
    assert_eq!(imp(pw("imp")).status, 200);

    // Ten wrong passwords in a row lock the key's password: then even the right one fails.
    for i in 0..10 {
        let r = imp(pw(&format!("wrong{i}")));
        assert_securosys_error(&r, 400, 620, &format!("wrong #{i}"));
    }
    let locked = imp(pw("imp"));
    assert_securosys_error(&locked, 400, 620, "locked");
    assert!(
        locked.json["message"].as_str().unwrap().contains("locked"),
        "{}",
        locked.body
    );

    // Adding to a key with a password (a certificate import) needs it, and changes nothing
    // without it.
    let before = dev.ok("GET", "/v1/certificate/pk", None)["certificate"].clone();
    dev.err(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "pk", "certificate": before})),
        400,
        620,
    );
    assert_eq!(
        dev.ok("GET", "/v1/certificate/pk", None)["certificate"],
        before
    );
    let r = dev.call(
        "POST",
        "/v1/key/import/plain",
        Some(json!({"label": "pk", "certificate": before, "password": pw("n3w")})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Delete: the password-less DELETE is refused, deleteKey with the password works.
    dev.err("DELETE", "/v1/key/pk", None, 400, 620);
    dev.err(
        "POST",
        "/v1/key/deleteKey",
        Some(json!({"label": "pk", "password": pw("sec-ret")})),
        400,
        620,
    );
    dev.ok(
        "POST",
        "/v1/key/deleteKey",
        Some(json!({"label": "pk", "password": pw("n3w")})),
    );
    dev.err(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "pk"})),
        404,
        650,
    );
}

/// `/v1/synchronousModify` and `/v1/modify`: the engine changes an SKA key's policy under the
/// compat rules; the async form answers 201 with `modifyKeyRequestId`.
#[test]
fn modify_changes_the_policy_of_ska_keys() {
    let dev = start_dev();
    let empty = json!({"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
        "keyStatus": {"blocked": false}});
    create(
        &dev,
        json!({"label": "ska", "algorithm": "EC", "policy": empty, "password": pw("m0d"),
            "attributes": {"sign": true, "verify": true}}),
    );
    create(
        &dev,
        json!({"label": "plain", "algorithm": "EC", "attributes": {"sign": true}}),
    );
    // A policy with an (always fulfilled) token in ruleUse: the attestation shows it.
    let mut next = empty.clone();
    next["ruleUse"] =
        json!({"tokens": [{"name": "t1", "timelock": 0, "timeout": 0, "groups": []}]});
    let body = |name: &str, policy: &Value, password: Value| {
        json!({"modifyRequest": {"modifyKeyName": name, "keyPassword": password, "policy": policy,
            "metaData": null, "metaDataSignature": null}, "requestSignature": null})
    };
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &next, Value::Null)),
        400,
        620,
    );
    let r = dev.call(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &next, pw("m0d"))),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let a = dev.ok(
        "POST",
        "/v1/key/attributes",
        Some(json!({"label": "ska", "password": pw("m0d")})),
    );
    assert!(
        a["xml"].as_str().unwrap().contains(r#"<token name="t1">"#),
        "{}",
        a["xml"]
    );
    assert_eq!(
        a["json"]["policy"]["ruleUse"]["tokens"][0]["name"],
        json!("t1")
    );
    // The asynchronous form: 201 and a request id that polls as EXECUTED.
    let r = dev.call("POST", "/v1/modify", Some(body("ska", &empty, pw("m0d"))));
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["modifyKeyRequestId"].as_str().unwrap().to_owned();
    let st = dev.ok("GET", &format!("/v1/request/{id}"), None);
    assert_eq!(st["status"], json!("EXECUTED"));
    // Keys made without a policy never become SKA keys.
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("plain", &empty, Value::Null)),
        400,
        614,
    );
    // keyStatus changes only by block / unblock.
    let mut blocked = empty.clone();
    blocked["keyStatus"]["blocked"] = json!(true);
    blocked["ruleUnblock"] = json!({"tokens": []});
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &blocked, pw("m0d"))),
        400,
        606,
    );
    // Invalid input: no policy, a policy that is not an object, an unknown key.
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(json!({"modifyRequest": {"modifyKeyName": "ska"}})),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &json!(7), pw("m0d"))),
        400,
        600,
    );
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("nope", &empty, Value::Null)),
        404,
        650,
    );
    // A modify rule that needs approvals: refused (fail closed) until approvals exist.
    let spki = create(
        &dev,
        json!({"label": "approver", "algorithm": "EC", "attributes": {"sign": true}}),
    )["publicKey"]
        .clone();
    let mut gated = empty.clone();
    gated["ruleModify"] = json!({"tokens": [{"name": "m", "timelock": 0, "timeout": 0, "groups": [
        {"name": "g", "quorum": 1, "approvals": [{"type": "public_key", "name": "a", "value": spki}]}]}]});
    let r = dev.call(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &gated, pw("m0d"))),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    dev.err(
        "POST",
        "/v1/synchronousModify",
        Some(body("ska", &empty, pw("m0d"))),
        400,
        400,
    );
}

/// Data objects: create, read, list; 615 for a name taken (also under concurrent creates),
/// 616 for a bad value, 653 for an unknown name; no delete over REST.
#[test]
fn data_objects_by_name() {
    let dev = start_dev();
    let made = dev.ok(
        "POST",
        "/v1/dataObject",
        Some(
            json!({"name": "cfg", "value": b64(b"hello data"), "application": "tests",
            "modifiable": false, "destroyable": true, "private": true}),
        ),
    );
    assert_eq!(made["name"], json!("cfg"));
    let got = dev.ok("GET", "/v1/dataObject/cfg", None);
    assert_eq!(unb64(got["value"].as_str().unwrap()), b"hello data");
    assert_eq!(got["application"], json!("tests"));
    assert_eq!(got["modifiable"], json!(false));
    assert_eq!(got["destroyable"], json!(true));
    assert_eq!(got["private"], json!(true));
    // Defaults; `label` is accepted for `name`; an empty value is a value.
    let d = dev.ok(
        "POST",
        "/v1/dataObject",
        Some(json!({"label": "empty", "value": ""})),
    );
    assert_eq!(d["value"], json!(""));
    assert_eq!(d["modifiable"], json!(true));
    assert_eq!(
        dev.ok("GET", "/v1/dataObject", None),
        json!(["cfg", "empty"])
    );
    // A data object and a key of one name do not collide; data names do.
    create(
        &dev,
        json!({"label": "cfg", "algorithm": "AES", "keySize": 128}),
    );
    dev.err(
        "POST",
        "/v1/dataObject",
        Some(json!({"name": "cfg", "value": b64(b"again")})),
        400,
        615,
    );
    assert_eq!(
        unb64(
            dev.ok("GET", "/v1/dataObject/cfg", None)["value"]
                .as_str()
                .unwrap()
        ),
        b"hello data",
        "the refused create changed nothing"
    );
    // Concurrent creates of one name: one wins.
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let dev = &dev;
                s.spawn(move || {
                    dev.call(
                        "POST",
                        "/v1/dataObject",
                        Some(json!({"name": "race", "value": b64(&[i])})),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1);
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_securosys_error(r, 400, 615, "race");
    }
    // Bad input.
    dev.err(
        "POST",
        "/v1/dataObject",
        Some(json!({"name": "bad", "value": "***"})),
        400,
        616,
    );
    dev.err(
        "POST",
        "/v1/dataObject",
        Some(json!({"name": "big", "value": b64(&vec![0u8; 70_000])})),
        400,
        616,
    );
    dev.err(
        "POST",
        "/v1/dataObject",
        Some(json!({"name": "", "value": ""})),
        400,
        610,
    );
    dev.err(
        "POST",
        "/v1/dataObject",
        Some(json!({"value": ""})),
        400,
        600,
    );
    dev.err("GET", "/v1/dataObject/none", None, 404, 653);
    let r = dev.call("DELETE", "/v1/dataObject/cfg", None);
    assert_securosys_error(&r, 405, 611, "no delete");
}

/// POST with curl, the body saved to `out` (binary-safe); (status, headers).
fn curl_download(dev: &Dev, path: &str, body: &Value, out: &Path) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let hdr = dir.path().join("h");
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "120", "--cacert"])
        .arg(&dev.ca)
        .args(["-X", "POST", "-D"])
        .arg(&hdr)
        .arg("-o")
        .arg(out)
        .args(["-w", "%{http_code}"]);
    for h in dev.auth() {
        c.args(["-H", &h]);
    }
    let o = c
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("{}{path}", dev.url))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap(),
        std::fs::read_to_string(&hdr).unwrap_or_default(),
    )
}

/// `/v1/key/keyAttestation`: a ZIP with the Securosys file names, unpacked by `unzip`, whose
/// signature `openssl` verifies against the chain, the chain against the cluster root, and
/// `tresor attest verify` accepts.
#[test]
fn key_attestation_zip_verifies_with_openssl() {
    let dev = start_dev();
    let tmp = tempfile::tempdir().unwrap();
    let j = create(
        &dev,
        json!({"label": "att/key", "algorithm": "EC", "password": pw("zip"),
            "attributes": {"sign": true}}),
    );
    let zip_file = tmp.path().join("a.zip");
    let body = json!({"label": "att/key", "password": pw("zip")});
    let (status, headers) = curl_download(&dev, "/v1/key/keyAttestation", &body, &zip_file);
    assert_eq!(
        status,
        200,
        "{}",
        std::fs::read_to_string(&zip_file).unwrap_or_default()
    );
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/zip"),
        "{headers}"
    );
    let out = tmp.path().join("x");
    let o = Command::new("unzip")
        .arg("-o")
        .arg(&zip_file)
        .arg("-d")
        .arg(&out)
        .output()
        .expect("unzip (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "PrimusHSM_Attestation.crt",
            "README_PrimusHSM_AuditAndAttestation_AN-E01.md",
            "att_key.pem",
            "att_key.sig",
            "att_key.xml",
        ]
    );
    let xml = std::fs::read_to_string(out.join("att_key.xml")).unwrap();
    assert!(xml.contains("<label>att/key</label>"), "{xml}");
    assert!(xml.contains(j["publicKey"].as_str().unwrap()), "{xml}");
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(&out)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let ca = dev.ca.to_str().unwrap();
    let chain = "PrimusHSM_Attestation.crt";
    let (ok, text) = run(&["verify", "-CAfile", ca, "-untrusted", chain, chain]);
    assert!(ok, "chain: {text}");
    let (ok, text) = run(&[
        "dgst",
        "-sha256",
        "-verify",
        "att_key.pem",
        "-signature",
        "att_key.sig",
        "att_key.xml",
    ]);
    assert!(ok && text.contains("Verified OK"), "signature: {text}");
    let (_, leaf_pub) = run(&["x509", "-in", chain, "-pubkey", "-noout"]);
    assert_eq!(
        leaf_pub.trim(),
        std::fs::read_to_string(out.join("att_key.pem"))
            .unwrap()
            .trim()
    );
    // A changed document does not verify.
    std::fs::write(out.join("att_key.xml"), xml.replace("att/key", "att/kez")).unwrap();
    let (ok, _) = run(&[
        "dgst",
        "-sha256",
        "-verify",
        "att_key.pem",
        "-signature",
        "att_key.sig",
        "att_key.xml",
    ]);
    assert!(!ok, "a changed document must not verify");
    std::fs::write(out.join("att_key.xml"), &xml).unwrap();
    let o = Command::new(TRESOR)
        .args(["attest", "verify", "--xml"])
        .arg(out.join("att_key.xml"))
        .arg("--signature")
        .arg(out.join("att_key.sig"))
        .arg("--chain")
        .arg(out.join(chain))
        .arg("--root-cert")
        .arg(&dev.ca)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tresor attest verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let readme =
        std::fs::read_to_string(out.join("README_PrimusHSM_AuditAndAttestation_AN-E01.md"))
            .unwrap();
    assert!(
        readme.contains("openssl dgst -sha256 -verify att_key.pem"),
        "{readme}"
    );
    assert!(readme.contains("tresor attest verify"), "{readme}");
    // The password is needed; unknown keys are 650 (JSON error bodies).
    dev.err(
        "POST",
        "/v1/key/keyAttestation",
        Some(json!({"label": "att/key"})),
        400,
        620,
    );
    dev.err(
        "POST",
        "/v1/key/keyAttestation",
        Some(json!({"label": "nope"})),
        404,
        650,
    );
    dev.err("POST", "/v1/key/keyAttestation", Some(json!({})), 400, 600);
}

/// Public-key recovery on secp256k1 in plain Python (no packages): an implementation
/// independent of the service's. Prints the uncompressed point recovered from `r ‖ s ‖ v`
/// (base64) and the digest (hex), after checking v ∈ {27, 28} and s ≤ n/2.
const RECOVER_PY: &str = r#"
import sys, base64
p = 2**256 - 2**32 - 977
n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
def add(P, Q):
    if P is None: return Q
    if Q is None: return P
    if P[0] == Q[0] and (P[1] + Q[1]) % p == 0: return None
    if P == Q: l = 3 * P[0] * P[0] * pow(2 * P[1], -1, p) % p
    else: l = (Q[1] - P[1]) * pow(Q[0] - P[0], -1, p) % p
    x = (l * l - P[0] - Q[0]) % p
    return (x, (l * (P[0] - x) - P[1]) % p)
def mul(k, P):
    R = None
    while k:
        if k & 1: R = add(R, P)
        P = add(P, P); k >>= 1
    return R
sig = base64.b64decode(sys.argv[1]); e = int(sys.argv[2], 16)
assert len(sig) == 65, len(sig)
r = int.from_bytes(sig[:32], 'big'); s = int.from_bytes(sig[32:64], 'big'); v = sig[64]
assert v in (27, 28), v
assert 0 < s <= n // 2, 'high s'
y = pow((r ** 3 + 7) % p, (p + 1) // 4, p)
if y % 2 != v - 27: y = p - y
ri = pow(r, -1, n)
Q = add(mul(s * ri % n, (r, y)), mul(-e * ri % n, G))
print('04%064x%064x' % Q)
"#;

/// `signatureType: ETH`: r ‖ s ‖ v for secp256k1, whose public key an independent
/// implementation recovers; `/v1/verify` accepts it.
#[test]
fn eth_signatures_recover_the_public_key() {
    let dev = start_dev();
    let j = create(
        &dev,
        json!({"label": "eth", "algorithm": "EC", "curveOid": "1.3.132.0.10",
            "attributes": {"sign": true, "verify": true}}),
    );
    let spki = unb64(j["publicKey"].as_str().unwrap());
    let point = hex::encode(&spki[spki.len() - 65..]);
    let digest = |data: &[u8]| hex::encode(openssl::sha::sha256(data));
    let cases: Vec<(&str, Vec<u8>, String)> = (0..6u8)
        .map(|i| {
            let payload = vec![i; 40];
            let e = digest(&payload);
            ("SHA256_WITH_ECDSA", payload, e)
        })
        .chain((0..4u8).map(|i| {
            let d = digest(&[i]);
            ("NONE_WITH_ECDSA", hex::decode(&d).unwrap(), d)
        }))
        .collect();
    let mut vs = std::collections::BTreeSet::new();
    for (alg, payload, e) in cases {
        let r = dev.call(
            "POST",
            "/v1/synchronousSign",
            Some(sign_body("eth", alg, &payload, Some("ETH"))),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let sig_b64 = r.json["signature"].as_str().unwrap().to_owned();
        let sig = unb64(&sig_b64);
        assert_eq!(sig.len(), 65);
        vs.insert(sig[64]);
        let o = Command::new("python3")
            .args(["-c", RECOVER_PY, &sig_b64, &e])
            .output()
            .expect("python3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), point, "{alg}");
        // The same signature verifies as ETH, and fails for other data.
        let verify =
            |data: &[u8]| {
                dev.ok(
                "POST",
                "/v1/verify",
                Some(json!({"verifySignatureRequest": {"payload": b64(data), "signKeyName": "eth",
                    "signatureAlgorithm": alg, "signature": sig_b64, "signatureType": "ETH"}})),
            )["signatureValid"]
                .clone()
            };
        assert_eq!(verify(&payload), json!(true), "{alg}");
        let mut other = payload.clone();
        other[0] ^= 1;
        assert_eq!(verify(&other), json!(false), "{alg}");
    }
    assert!(vs.iter().all(|v| *v == 27 || *v == 28), "{vs:?}");
    // ETH needs secp256k1 and ECDSA.
    create(
        &dev,
        json!({"label": "p256", "algorithm": "EC", "attributes": {"sign": true}}),
    );
    dev.err(
        "POST",
        "/v1/synchronousSign",
        Some(sign_body("p256", "SHA256_WITH_ECDSA", b"x", Some("ETH"))),
        400,
        607,
    );
}

/// The REST service's Prometheus metrics (on their own plain-HTTP port): requests counted by
/// method, route template and status, 404s of unknown paths as `unmatched`, and no key name
/// a caller sent in a path.
#[test]
fn metrics_count_requests_by_route_template() {
    let dev = start_dev();
    let metrics_url = field(&dev.printed, "metrics");
    assert!(
        metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"),
        "{metrics_url}"
    );
    dev.ok("GET", "/v1/versionInfo", None);
    dev.ok("GET", "/v1/versionInfo", None);
    let missing = dev.call("GET", "/v1/key/no-such-key-7f3a/attributes", None);
    assert!(missing.status >= 400, "{}", missing.body);
    let anonymous = curl(&dev.ca, "GET", &format!("{}/v1/key", dev.url), &[], None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let unknown = dev.call("GET", "/v1/no/such/path", None);
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let m = curl(&dev.ca, "GET", &metrics_url, &[], None);
    assert_eq!(m.status, 200, "{}", m.body);
    let count = |series: &str| -> u64 {
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{}", m.body))
    };
    assert_eq!(
        count(r#"tresor_rest_requests_total{method="GET",route="/v1/versionInfo",status="200"}"#),
        2
    );
    assert_eq!(
        count(&format!(
            r#"tresor_rest_requests_total{{method="GET",route="/v1/key/{{keyName}}/attributes",status="{}"}}"#,
            missing.status
        )),
        1
    );
    assert_eq!(
        count(r#"tresor_rest_requests_total{method="GET",route="/v1/key",status="401"}"#),
        1
    );
    assert_eq!(
        count(r#"tresor_rest_requests_total{method="GET",route="unmatched",status="404"}"#),
        1
    );
    assert_eq!(
        count(
            r#"tresor_rest_request_duration_seconds_count{method="GET",route="/v1/versionInfo"}"#
        ),
        2
    );
    assert_eq!(
        count(
            r#"tresor_rest_request_duration_seconds_bucket{method="GET",route="/v1/versionInfo",le="+Inf"}"#
        ),
        2
    );
    assert_eq!(count("tresor_rest_tenants"), 1);
    assert!(!m.body.contains("no-such-key-7f3a"), "{}", m.body);
    assert!(!m.body.contains("no/such/path"), "{}", m.body);
    let health = curl(
        &dev.ca,
        "GET",
        &metrics_url.replace("/metrics", "/health"),
        &[],
        None,
    );
    assert_eq!(health.status, 200, "{}", health.body);
}
