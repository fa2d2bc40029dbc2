//! `tresor rest` as its own process on the network path: HSM node + gateway, two partitions
//! (tenants A and B) registered with `ppin`, the REST service reaching them through the client
//! library with one slot per tenant. Proves:
//!
//! * tenant isolation: B cannot list, read, use or delete A's keys (same key names in both
//!   partitions stay apart);
//! * JWT claims bind tenant and partition; API-key roles are enforced per tenant;
//! * mTLS: a client certificate from the configured client CA authenticates as its tenant, one
//!   from another CA is refused in the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TRESOR: &str = env!("CARGO_BIN_EXE_tresor");
const PPIN: &str = env!("CARGO_BIN_EXE_ppin");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_port(addr: SocketAddr, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("process exited early ({st})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr} did not open");
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    share: PathBuf,
}

impl Env {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(TRESOR);
        c.args(args)
            .env("TRESOR_STORE", &self.db)
            .env("TRESOR_LOG", "warn");
        if matches!(args.first(), Some(&"admin") | Some(&"cert") | Some(&"hsm"))
            && !matches!(args.get(1), Some(&"token") | Some(&"api-key"))
        {
            c.arg("--share-file").arg(&self.share);
        }
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(o.status.success(), "tresor {args:?}: {}", text(&o));
        text(&o)
    }
}

fn ppin_ok(cfg: &Path, secrets: &Path, args: &[&str]) {
    let o = Command::new(PPIN)
        .arg("-c")
        .arg(cfg)
        .arg("-s")
        .arg(secrets)
        .args(args)
        .env_remove("TRESOR_PKCS11_CONF")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "ppin {args:?}: {}", text(&o));
}

fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

struct Reply {
    status: u16,
    json: Value,
    body: String,
}

struct Rest {
    url: String,
    ca: PathBuf,
}

impl Rest {
    fn call(&self, method: &str, path: &str, headers: &[String], body: Option<Value>) -> Reply {
        self.call_with(method, path, headers, body, &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[String],
        body: Option<Value>,
        extra: &[&str],
    ) -> Reply {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "120", "--cacert"])
            .arg(&self.ca)
            .args(["-X", method, "-o", "-", "-w", "\n%{http_code}"])
            .args(extra);
        for h in headers {
            c.args(["-H", h]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let o = c.arg(format!("{}{path}", self.url)).output().unwrap();
        assert!(o.status.success(), "curl {method} {path}: {}", text(&o));
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = t.rsplit_once('\n').unwrap();
        Reply {
            status: code.trim().parse().unwrap(),
            json: serde_json::from_str(body).unwrap_or(Value::Null),
            body: body.to_owned(),
        }
    }
}

#[test]
fn standalone_rest_isolates_tenants_and_checks_every_credential() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        db: dir.path().join("tresor.db"),
        share: dir.path().join("shares/share-1.txt"),
        dir,
    };
    let root = env.p("root.pem");
    env.ok(&[
        "init",
        "--shares",
        "1",
        "--threshold",
        "1",
        "--share-dir",
        env.p("shares").to_str().unwrap(),
        "--root-cert",
        root.to_str().unwrap(),
    ]);
    for (p, pin) in [("A", "pin-of-a-0001"), ("B", "pin-of-b-0001")] {
        env.ok(&[
            "admin",
            "partition",
            "create",
            p,
            "--so-pin",
            "so-pin-00001",
            "--user-pin",
            pin,
        ]);
    }
    let out = env.ok(&[
        "admin",
        "service",
        "create",
        "--name",
        "acme",
        "--service-user",
        "acme-svc",
        "--allow",
        "127.0.0.1/32",
        "--partition",
        "A",
        "--partition",
        "B",
    ]);
    let svc_pw = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Service user password:"))
        .unwrap()
        .trim()
        .to_owned();
    let (gw_cert, gw_key) = (env.p("gw.pem"), env.p("gw.key"));
    env.ok(&[
        "cert",
        "gateway",
        "--san",
        "127.0.0.1",
        "--cert",
        gw_cert.to_str().unwrap(),
        "--key",
        gw_key.to_str().unwrap(),
    ]);
    let (rest_cert, rest_key) = (env.p("rest.pem"), env.p("rest.key"));
    env.ok(&[
        "cert",
        "gateway",
        "--name",
        "tresor-rest",
        "--san",
        "127.0.0.1",
        "--cert",
        rest_cert.to_str().unwrap(),
        "--key",
        rest_key.to_str().unwrap(),
    ]);

    let node: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut c = env
        .cmd(&["hsm", "--listen", &node.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(node, &mut c);
    let _node = Proc(c);
    let gw: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut c = env
        .cmd(&[
            "gateway",
            "--listen",
            &gw.to_string(),
            "--cert",
            gw_cert.to_str().unwrap(),
            "--key",
            gw_key.to_str().unwrap(),
            "--health-interval",
            "1",
            "--node",
            &format!("n1={node}"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(gw, &mut c);
    let _gw = Proc(c);
    std::thread::sleep(Duration::from_millis(1500));

    // One slot per tenant partition, registered with ppin.
    let cfg = env.p("primus.cfg");
    let secrets = env.p(".secrets.cfg");
    std::fs::write(
        &cfg,
        format!(
            "version = \"1.0\";\nprimus: {{\n  ca_file = \"{}\";\n  wait_delay = 100;\n  wait_max_tries = 5;\n  hsms: {{\n    hsm0: {{ host = \"127.0.0.1\"; port = \"{}\"; priority = 0;\n      slots: {{\n        slot0: {{ client_id = \"rest\"; user_name = \"A\"; proxy_user = \"acme-svc\"; id = 0; }};\n        slot1: {{ client_id = \"rest\"; user_name = \"B\"; proxy_user = \"acme-svc\"; id = 1; }};\n      }}; }};\n  }};\n}};\n",
            root.display(),
            gw.port()
        ),
    )
    .unwrap();
    ppin_ok(&cfg, &secrets, &["-p", "-e", "acme-svc", &svc_pw]);
    for (p, pin) in [("A", "pin-of-a-0001"), ("B", "pin-of-b-0001")] {
        let out = env.ok(&["admin", "credentials", "setup-password", "--partition", p]);
        let setup = out
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 29 && l.matches('-').count() == 4)
            .unwrap()
            .to_owned();
        ppin_ok(&cfg, &secrets, &["-a", "-e", p, &setup, pin]);
    }

    // JWT signing key, client CA and client certificates for mTLS.
    let (jwt_key, jwt_pub) = (env.p("jwt.key"), env.p("jwt.pub"));
    env.ok(&[
        "admin",
        "token",
        "keygen",
        "--alg",
        "ES256",
        "--private-key",
        jwt_key.to_str().unwrap(),
        "--public-key",
        jwt_pub.to_str().unwrap(),
    ]);
    let d = |n: &str| env.p(n).to_str().unwrap().to_owned();
    for (ca, client, cn) in [
        ("ca", "client", "tenant-a-client"),
        ("rogue-ca", "rogue", "tenant-a-client"),
    ] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &d(&format!("{ca}.key")),
            "-out",
            &d(&format!("{ca}.pem")),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &d(&format!("{client}.key")),
            "-out",
            &d(&format!("{client}.csr")),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        std::fs::write(
            env.p("ext.cnf"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &d(&format!("{client}.csr")),
            "-CA",
            &d(&format!("{ca}.pem")),
            "-CAkey",
            &d(&format!("{ca}.key")),
            "-CAcreateserial",
            "-out",
            &d(&format!("{client}.pem")),
            "-days",
            "2",
            "-extfile",
            &d("ext.cnf"),
        ]);
    }

    let port = free_port();
    let metrics_port = free_port();
    let rest_json = env.p("rest.json");
    std::fs::write(
        &rest_json,
        serde_json::to_string_pretty(&json!({
            "listen": format!("127.0.0.1:{port}"),
            "tls": {"cert": "rest.pem", "key": "rest.key", "clientCa": "ca.pem", "clientAuth": "want"},
            "jwt": {"publicKey": "jwt.pub", "algorithm": "ES256", "audience": "tresor-rest"},
            "primusConfig": "primus.cfg",
            "secretsConfig": ".secrets.cfg",
            "store": "tresor.db",
            "requestRetentionHours": 48,
            "metricsListen": format!("127.0.0.1:{metrics_port}"),
            "tenants": [
                {"name": "tenant-a", "partition": "A", "pin": "pin-of-a-0001", "mtlsNames": ["tenant-a-client"]},
                {"name": "tenant-b", "partition": "B", "pin": "pin-of-b-0001"}
            ]
        }))
        .unwrap(),
    )
    .unwrap();
    // B gets role API keys: a key-operation key and a key-management key.
    let ko = env
        .ok(&[
            "admin",
            "api-key",
            "--config",
            rest_json.to_str().unwrap(),
            "--tenant",
            "tenant-b",
            "--role",
            "keyOperationToken",
        ])
        .trim()
        .to_owned();
    let km = env
        .ok(&[
            "admin",
            "api-key",
            "--config",
            rest_json.to_str().unwrap(),
            "--tenant",
            "tenant-b",
            "--role",
            "keyManagementToken",
            "--role",
            "serviceToken",
        ])
        .trim()
        .to_owned();
    assert!(ko.starts_with("tsb-x-token_") && km.starts_with("tsb-x-token_"));
    assert!(
        !std::fs::read_to_string(&rest_json).unwrap().contains(&ko),
        "only digests are stored"
    );

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Command::new(TRESOR)
        .args(["rest", "--config", rest_json.to_str().unwrap()])
        .env("TRESOR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(addr, &mut c);
    let _rest = Proc(c);
    let rest = Rest {
        url: format!("https://127.0.0.1:{port}"),
        ca: root.clone(),
    };
    let token = |tenant: &str, partition: &str| {
        env.ok(&[
            "admin",
            "token",
            "issue",
            "--alg",
            "ES256",
            "--key",
            jwt_key.to_str().unwrap(),
            "--tenant",
            tenant,
            "--partition",
            partition,
        ])
        .trim()
        .to_owned()
    };
    let a = vec![format!("Authorization: Bearer {}", token("tenant-a", "A"))];
    let b_jwt = format!("Authorization: Bearer {}", token("tenant-b", "B"));
    let b_km = vec![b_jwt.clone(), format!("X-API-KEY: {km}")];
    let b_ko = vec![b_jwt.clone(), format!("X-API-KEY: {ko}")];

    // The seed key in both partitions, plus one only A has.
    let seed = json!({"label": "TSB_KEY_TEST", "id": null, "password": null, "algorithm": "RSA",
        "curveOid": null, "keySize": 2048, "attributes": {"encrypt": true, "decrypt": true,
        "verify": true, "sign": true, "wrap": true, "unwrap": true, "derive": false, "bip32": false,
        "extractable": false, "modifiable": true, "destroyable": true, "sensitive": true,
        "copyable": false}, "policy": null});
    let ka = rest.call("POST", "/v1/key", &a, Some(seed.clone()));
    assert_eq!(ka.status, 200, "{}", ka.body);
    let kb = rest.call("POST", "/v1/key", &b_km, Some(seed));
    assert_eq!(kb.status, 200, "{}", kb.body);
    assert_ne!(ka.json["json"]["publicKey"], kb.json["json"]["publicKey"]);
    let r = rest.call(
        "POST",
        "/v1/key",
        &a,
        Some(json!({"label": "a-only", "algorithm": "EC",
        "attributes": {"sign": true, "verify": true, "destroyable": true}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The service's own metrics (configured `metricsListen`): the three key creations, both
    // tenants, and no tenant or key name in any label.
    let status = Rest {
        url: format!("http://127.0.0.1:{metrics_port}"),
        ca: root.clone(),
    };
    let m = status.call("GET", "/metrics", &[], None);
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(m.body.contains("tresor_rest_tenants 2\n"), "{}", m.body);
    assert!(
        m.body.contains(
            "tresor_rest_requests_total{method=\"POST\",route=\"/v1/key\",status=\"200\"} 3\n"
        ),
        "{}",
        m.body
    );
    for private in ["tenant-a", "tenant-b", "TSB_KEY_TEST", "a-only"] {
        assert!(!m.body.contains(private), "{private} in\n{}", m.body);
    }

    // Sign over the network path and check with openssl.
    let s = rest.call("POST", "/v1/synchronousSign", &a, Some(json!({"signRequest": {
        "payload": "UGF5bG9hZA==", "payloadType": "UNSPECIFIED", "signKeyName": "TSB_KEY_TEST",
        "keyPassword": null, "signatureAlgorithm": "SHA224_WITH_RSA_PSS", "signatureType": "DER"}})));
    assert_eq!(s.status, 200, "{}", s.body);
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let spki = ka.json["json"]["publicKey"].as_str().unwrap();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            spki.as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::fs::write(env.p("a.pub"), pem).unwrap();
        std::fs::write(
            env.p("sig"),
            b64.decode(s.json["signature"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        std::fs::write(env.p("data"), b"Payload").unwrap();
        openssl(&[
            "dgst",
            "-sha224",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:28",
            "-verify",
            &d("a.pub"),
            "-signature",
            &d("sig"),
            &d("data"),
        ]);
    }

    // Isolation: B sees only its own keys and cannot touch A's.
    let lb = rest.call("GET", "/v1/key", &b_km, None);
    assert_eq!(lb.json, json!(["TSB_KEY_TEST"]), "{}", lb.body);
    let la = rest.call("GET", "/v1/key", &a, None);
    assert_eq!(la.json, json!(["TSB_KEY_TEST", "a-only"]), "{}", la.body);
    for (m, p, h, body) in [
        (
            "POST",
            "/v1/key/attributes",
            &b_km,
            Some(json!({"label": "a-only"})),
        ),
        ("GET", "/v1/key/a-only/attributes", &b_km, None),
        ("DELETE", "/v1/key/a-only", &b_km, None),
        (
            "POST",
            "/v1/synchronousSign",
            &b_ko,
            Some(json!({"signRequest": {"payload": "AA==",
            "signKeyName": "a-only", "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
        ),
        (
            "POST",
            "/v1/verify",
            &b_ko,
            Some(json!({"verifySignatureRequest": {"payload": "AA==",
            "signKeyName": "a-only", "signatureAlgorithm": "SHA256_WITH_ECDSA", "signature": "AA=="}})),
        ),
        (
            "POST",
            "/v1/key/changePassword",
            &b_km,
            Some(json!({"label": "a-only", "newPassword": ["x"]})),
        ),
        (
            "POST",
            "/v1/key/keyAttestation",
            &b_km,
            Some(json!({"label": "a-only"})),
        ),
        (
            "POST",
            "/v1/synchronousModify",
            &b_km,
            Some(json!({"modifyRequest": {"modifyKeyName": "a-only", "policy": {}}})),
        ),
    ] {
        let r = rest.call(m, p, h, body);
        assert_eq!(
            (r.status, r.json["errorCode"].clone()),
            (404, json!(650)),
            "B {m} {p}: {}",
            r.body
        );
    }
    // Data objects are per partition too: B cannot read A's, and may use the same name.
    let r = rest.call(
        "POST",
        "/v1/dataObject",
        &a,
        Some(json!({"name": "a-data", "value": "AQI="})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rest.call("GET", "/v1/dataObject/a-data", &b_km, None);
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (404, json!(653)),
        "{}",
        r.body
    );
    let r = rest.call(
        "POST",
        "/v1/dataObject",
        &b_km,
        Some(json!({"name": "a-data", "value": "AA=="})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rest.call("GET", "/v1/dataObject/a-data", &a, None);
    assert_eq!(r.json["value"], json!("AQI="), "{}", r.body);
    // Key passwords travel over the network path with each request.
    let r = rest.call(
        "POST",
        "/v1/key",
        &a,
        Some(
            json!({"label": "a-pw", "algorithm": "EC", "password": ["n", "e", "t"],
            "attributes": {"sign": true}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for (pw, status, code) in [
        (json!(null), 400, json!(620)),
        (json!(["n", "o"]), 400, json!(620)),
        (json!(["n", "e", "t"]), 200, json!(null)),
    ] {
        let r = rest.call(
            "POST",
            "/v1/synchronousSign",
            &a,
            Some(json!({"signRequest": {
            "payload": "AA==", "signKeyName": "a-pw", "keyPassword": pw,
            "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
        );
        assert_eq!(
            (r.status, r.json["errorCode"].clone()),
            (status, code),
            "{}",
            r.body
        );
    }

    // A's key is still there and works; B's request ids are not A's.
    let s = rest.call(
        "POST",
        "/v1/synchronousSign",
        &a,
        Some(json!({"signRequest": {"payload": "AA==",
        "signKeyName": "a-only", "signatureAlgorithm": "SHA256_WITH_ECDSA"}})),
    );
    assert_eq!(s.status, 200, "{}", s.body);

    // A token naming one tenant with another's partition is refused.
    let mixed = vec![format!("Authorization: Bearer {}", token("tenant-a", "B"))];
    let r = rest.call("GET", "/v1/key", &mixed, None);
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (401, json!(617)),
        "{}",
        r.body
    );

    // Roles: B's key-operation key cannot manage keys, the management key cannot sign.
    let r = rest.call("GET", "/v1/key", &b_ko, None);
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (401, json!(631)),
        "{}",
        r.body
    );
    let r = rest.call("POST", "/v1/synchronousSign", &b_km, Some(json!({"signRequest": {
        "payload": "AA==", "signKeyName": "TSB_KEY_TEST", "signatureAlgorithm": "SHA256_WITH_RSA"}})));
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (401, json!(631)),
        "{}",
        r.body
    );
    let r = rest.call("GET", "/v1/versionInfo", std::slice::from_ref(&b_jwt), None);
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (400, json!(416)),
        "{}",
        r.body
    );
    let r = rest.call("GET", "/v1/versionInfo", &b_km, None);
    assert_eq!(r.status, 200, "{}", r.body);
    // B's key alone (no token) authenticates as B.
    let r = rest.call("GET", "/v1/key", &[format!("X-API-KEY: {km}")], None);
    assert_eq!(r.json, json!(["TSB_KEY_TEST"]), "{}", r.body);

    // mTLS: the client certificate of the configured CA is tenant A.
    let r = rest.call_with(
        "GET",
        "/v1/key",
        &[],
        None,
        &["--cert", &d("client.pem"), "--key", &d("client.key")],
    );
    assert_eq!(
        r.json,
        json!(["TSB_KEY_TEST", "a-only", "a-pw"]),
        "{}",
        r.body
    );
    // A certificate from another CA does not get through the handshake.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&root)
        .args(["--cert", &d("rogue.pem"), "--key", &d("rogue.key")])
        .arg(format!("{}/v1/key", rest.url))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a foreign client certificate was accepted: {}",
        text(&o)
    );
    // Without any credential: 401.
    let r = rest.call("GET", "/v1/key", &[], None);
    assert_eq!(
        (r.status, r.json["errorCode"].clone()),
        (401, json!(406)),
        "{}",
        r.body
    );

    // B deletes its own TSB_KEY_TEST; A's is untouched.
    let r = rest.call("DELETE", "/v1/key/TSB_KEY_TEST", &b_km, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = rest.call(
        "POST",
        "/v1/key/attributes",
        &a,
        Some(json!({"label": "TSB_KEY_TEST"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["json"]["publicKey"], ka.json["json"]["publicKey"]);
}
