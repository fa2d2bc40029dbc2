//! The typed `primus.cfg` layer: the compat sample, redundancy, and every error with its position.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secrecy::ExposeSecret;
use tresor_client::config::primus::PrimusConfig;
use tresor_client::{Error, VendorCode};

const SAMPLE: &str = include_str!("fixtures/compat_sample.cfg");

fn errors(text: &str) -> Vec<String> {
    match PrimusConfig::parse_str(text, "primus.cfg") {
        Err(e @ Error::InvalidConfig(_)) => {
            assert_eq!(e.vendor_code(), VendorCode::INVALID_CFG);
            e.diagnostics().iter().map(ToString::to_string).collect()
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// A minimal valid file with `hsm0` body replaced.
fn with_hsm(body: &str) -> String {
    format!("primus: {{\n  hsms: {{\n    hsm0: {{\n{body}\n    }};\n  }};\n}};\n")
}

#[test]
fn compat_sample_parses_with_the_right_values() {
    let c = PrimusConfig::parse_str(SAMPLE, "primus.cfg").unwrap();
    assert_eq!(c.version.as_deref(), Some("1.0"));
    assert_eq!(c.wait_delay_ms, 250);
    assert_eq!(c.wait_delay(), std::time::Duration::from_millis(250));
    assert_eq!(c.wait_max_tries, 5);
    assert!(c.connect_on_init);
    assert_eq!(c.hsms.len(), 2);
    let h = &c.hsms[0];
    assert_eq!(h.name, "hsm0");
    assert_eq!(h.host, "a-api.cloudshsm.com");
    assert_eq!(h.port, 2310);
    assert_eq!(h.priority, 0);
    assert_eq!(h.pin.as_ref().unwrap().expose_secret(), "…");
    let s = &h.slots[0];
    assert_eq!(s.name, "slot0");
    assert_eq!(s.client_id.as_deref(), Some("App1"));
    assert_eq!(s.user_name, "PARTITION");
    assert_eq!(s.proxy_user.as_deref(), Some("SVC"));
    assert_eq!(s.proxy_password.as_ref().unwrap().expose_secret(), "…");
    assert_eq!(s.id, 0);
    assert_eq!(c.hsms[1].priority, 1);
    let log = &c.log;
    assert_eq!(log.file.as_deref(), Some("/tmp/primus.log"));
    assert!(log.write_log_file && log.write_syslog);
    assert!(!log.trace_linenumber && log.trace_timestamp && log.trace_function);
    assert!(!log.trace_inout && log.trace_pid && !log.trace_filename);
    assert_eq!(log.trace_mask, 0);
    assert_eq!(log.trace_level, 4);
    // One redundant slot with two targets, best priority first.
    assert_eq!(c.slots().len(), 1);
    let slot = c.slot(0).unwrap();
    assert!(slot.is_redundant());
    assert_eq!(slot.user_name, "PARTITION");
    let hosts: Vec<_> = slot
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.priority))
        .collect();
    assert_eq!(
        hosts,
        [("a-api.cloudshsm.com", 0), ("b-api.cloudshsm.com", 1)]
    );
    assert!(c.has_user("PARTITION") && c.has_user("SVC") && !c.has_user("X"));
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c = PrimusConfig::parse_str(&SAMPLE.replace('…', "hunter2"), "primus.cfg").unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("REDACTED"));
}

#[test]
fn two_hsm_redundant_slot_sorted_by_priority() {
    let text = r#"
primus = {
  hsms = {
    hsm0 = { host = "h0"; port = 2310; priority = 5;
             slots = { slot0 = { user_name = "P1"; id = 3; }; slot1 = { user_name = "P2"; id = 1; }; }; };
    hsm1 = { host = "h1"; port = "2311"; priority = 2;
             slots = { s = { user_name = "P1"; id = 3; }; }; };
  };
};"#;
    let c = PrimusConfig::parse_str(text, "primus.cfg").unwrap();
    let ids: Vec<u32> = c.slots().iter().map(|s| s.id).collect();
    assert_eq!(ids, [1, 3]);
    let slot = c.slot(3).unwrap();
    assert_eq!(slot.best_priority(), Some(2));
    let targets: Vec<_> = slot
        .targets
        .iter()
        .map(|t| (t.hsm.as_str(), t.port))
        .collect();
    assert_eq!(targets, [("hsm1", 2311), ("hsm0", 2310)]);
    assert!(!c.slot(1).unwrap().is_redundant());
    assert_eq!(c.slots_for_user("P1").unwrap().len(), 1);
    let e = c.slots_for_user("nobody").unwrap_err();
    assert_eq!(e.vendor_code(), VendorCode::USER_NOT_IN_CFG);
    // Defaults.
    assert_eq!(c.wait_delay_ms, 250);
    assert_eq!(c.wait_max_tries, 5);
    assert!(c.connect_on_init);
    assert_eq!(c.version, None);
}

#[test]
fn same_id_with_different_user_names_is_an_error() {
    let text = r#"primus = { hsms = {
hsm0 = { host = "h0"; port = "1"; slots = { s = { user_name = "A"; id = 0; }; }; };
hsm1 = { host = "h1"; port = "1"; slots = { s = { user_name = "B"; id = 0; }; }; };
}; };"#;
    assert_eq!(
        errors(text),
        [
            "primus.cfg:3:63: slot id 0 uses user_name 'B' here but 'A' at primus.cfg:2:63; \
          the same id must name the same partition everywhere"
        ]
    );
}

#[test]
fn unknown_key_is_reported_with_suggestion() {
    let text = with_hsm("      host = \"h\";\n      prot = \"2310\";");
    assert_eq!(
        errors(&text),
        [
            "primus.cfg:5:7: unknown setting 'primus.hsms.hsm0.prot' (did you mean 'port'?)",
            "primus.cfg:3:5: missing required setting 'primus.hsms.hsm0.port'",
        ]
    );
    let text = "primus = { hsms = { h = { host = \"h\"; port = \"1\"; }; }; colour = 1; };";
    assert_eq!(
        errors(text),
        ["primus.cfg:1:57: unknown setting 'primus.colour'"]
    );
    let text = "verison = \"1.0\"; primus = { hsms = { h = { host = \"h\"; port = \"1\"; }; }; };";
    assert_eq!(
        errors(text),
        ["primus.cfg:1:1: unknown setting 'verison' (did you mean 'version'?)"]
    );
}

#[test]
fn wrong_types_name_the_expected_type() {
    let text = "primus = { wait_delay = \"250\"; connect_on_init = 1; hsms = { h = { host = 5; port = 1.5; priority = 200; }; }; log = { trace_level = 9; trace_pid = \"yes\"; }; };";
    assert_eq!(
        errors(text),
        [
            "primus.cfg:1:25: 'primus.wait_delay' must be an integer (0..=4294967295), found a string",
            "primus.cfg:1:50: 'primus.connect_on_init' must be a bool (true or false), found an int",
            "primus.cfg:1:75: 'primus.hsms.h.host' must be a string, found an int",
            "primus.cfg:1:85: 'primus.hsms.h.port' must be a port number string such as \"2310\", found a float",
            "primus.cfg:1:101: 'primus.hsms.h.priority' must be between 0 and 127, found 200",
            "primus.cfg:1:134: 'primus.log.trace_level' must be between 0 and 7, found 9",
            "primus.cfg:1:149: 'primus.log.trace_pid' must be a bool (true or false), found a string",
        ]
    );
    let text = with_hsm("      host = \"h\"; port = \"23a0\";");
    assert_eq!(
        errors(&text),
        ["primus.cfg:4:26: 'primus.hsms.hsm0.port' must be a port number (1..=65535), found \"23a0\""]
    );
}

#[test]
fn missing_required_settings_are_named() {
    let text = with_hsm("      slots = { slot0 = { client_id = \"x\"; }; };");
    assert_eq!(
        errors(&text),
        [
            "primus.cfg:4:17: missing required setting 'primus.hsms.hsm0.slots.slot0.user_name'",
            "primus.cfg:4:17: missing required setting 'primus.hsms.hsm0.slots.slot0.id'",
            "primus.cfg:3:5: missing required setting 'primus.hsms.hsm0.host'",
            "primus.cfg:3:5: missing required setting 'primus.hsms.hsm0.port'",
        ]
    );
    assert_eq!(
        errors("version = \"1.0\";"),
        ["primus.cfg:1:1: missing required setting 'primus'"]
    );
    assert_eq!(
        errors("primus = { };"),
        ["primus.cfg:1:1: missing required setting 'primus.hsms'"]
    );
}

#[test]
fn hex_trace_mask_and_integer_port() {
    let text = "primus = { hsms = { h = { host = \"h\"; port = 2310; }; }; log = { trace_mask = 0x07; }; };";
    let c = PrimusConfig::parse_str(text, "primus.cfg").unwrap();
    assert_eq!(c.hsms[0].port, 2310);
    assert_eq!(c.log.trace_mask, 7);
    assert!(c.slots().is_empty());
}

#[test]
fn syntax_errors_map_to_invalid_config() {
    let text =
        "primus = {\n  hsms = {\n    h = {\n      host = \"h\";\n\n\n      port = \"2310\" 5;\n";
    assert_eq!(
        errors(text),
        ["primus.cfg:7:21: expected ';' or ',' after the value of 'port'"]
    );
}
