//! Arbitrary UTF-8 into the libconfig parser, the `primus.cfg` typed layer and the
//! `.secrets.cfg` reader: none of them may panic, and whatever parses must serialize to text
//! that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tresor_client::config::libconfig::{parse_str_with, to_string, ParseOptions};
use tresor_client::config::primus::PrimusConfig;
use tresor_client::config::secrets::SecretsFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = ParseOptions {
        allow_includes: false,
        ..ParseOptions::default()
    };
    let Ok(root) = parse_str_with(text, "fuzz.cfg", &options) else {
        return;
    };
    let _ = PrimusConfig::from_value(&root);
    let _ = SecretsFile::from_value(&root);
    let again = parse_str_with(&to_string(&root), "again.cfg", &options)
        .expect("serialized tree must parse");
    assert!(again.same_content(&root), "round trip changed the tree");
});
