//! Tests of shares, the seal config, init and combine.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::seal::{aad_cluster, open, seal};
use proptest::prelude::*;

fn assert_bad_share(r: Result<impl fmt::Debug>, detail: &str) {
    match r {
        Ok(v) => panic!("expected a bad-share error '{detail}', got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.rv(), Rv::Vendor(vendor::BAD_SHARE), "{e}");
            assert!(
                e.detail().contains(detail),
                "expected '{detail}' in '{}'",
                e.detail()
            );
        }
    }
}

fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    let blob = seal(a.seal_key(), &aad_cluster("t"), b"x").unwrap();
    a.seal_key().expose_bytes() == b.seal_key().expose_bytes()
        && open(b.seal_key(), &aad_cluster("t"), &blob).is_ok()
}

fn pick(shares: &[Share], idx: &[u8]) -> Vec<Share> {
    idx.iter()
        .map(|i| shares[usize::from(*i) - 1].clone())
        .collect()
}

/// All subsets of `1..=n` of size `k`.
fn subsets(n: u8, k: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == k {
            out.push((1..=n).filter(|i| mask & (1 << (i - 1)) != 0).collect());
        }
    }
    out
}

#[test]
fn round_trip_1_of_1() {
    let (master, config, shares) = init(1, 1).unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!((config.threshold(), config.share_count()), (1, 1));
    assert_eq!(config.commitments().len(), 1);
    let back = combine(&config, &shares).unwrap();
    assert!(same_key(&master, &back));
    assert_bad_share(combine(&config, &[]), "need 1 shares, got 0");
}

#[test]
fn round_trip_1_of_3_any_share() {
    let (master, config, shares) = init(1, 3).unwrap();
    for s in &shares {
        assert!(same_key(
            &master,
            &combine(&config, std::slice::from_ref(s)).unwrap()
        ));
    }
    assert!(same_key(&master, &combine(&config, &shares).unwrap()));
}

#[test]
fn round_trip_2_of_3_every_subset() {
    let (master, config, shares) = init(2, 3).unwrap();
    assert_eq!(config.commitments().len(), 2);
    for k in 2..=3 {
        for set in subsets(3, k) {
            let got = combine(&config, &pick(&shares, &set)).unwrap();
            assert!(same_key(&master, &got), "subset {set:?}");
        }
    }
    for set in subsets(3, 1) {
        assert_bad_share(
            combine(&config, &pick(&shares, &set)),
            "need 2 shares, got 1",
        );
    }
    // Order does not matter.
    let got = combine(&config, &pick(&shares, &[3, 1])).unwrap();
    assert!(same_key(&master, &got));
}

#[test]
fn round_trip_3_of_5() {
    let (master, config, shares) = init(3, 5).unwrap();
    for set in subsets(5, 3) {
        let got = combine(&config, &pick(&shares, &set)).unwrap();
        assert!(same_key(&master, &got), "subset {set:?}");
    }
    assert!(same_key(&master, &combine(&config, &shares).unwrap()));
    assert_bad_share(
        combine(&config, &pick(&shares, &[1, 5])),
        "need 3 shares, got 2",
    );
}

#[test]
fn text_round_trip_and_leniency() {
    let (master, config, shares) = init(2, 3).unwrap();
    let texts: Vec<_> = shares.iter().map(|s| s.expose_text()).collect();
    for (s, t) in shares.iter().zip(&texts) {
        assert!(
            t.starts_with(&format!("tresor-share-v1-{}-", s.index())),
            "{}",
            &**t
        );
        let p = Share::parse(t).unwrap();
        assert_eq!(p.index(), s.index());
        assert_eq!(p.cluster_id(), config.cluster_id());
        assert_eq!(*p.expose_text(), **t);
        let q: Share = t.parse().unwrap();
        assert_eq!(*q.expose_text(), **t);
        // Upper case, spaces and line breaks as a person might type them.
        let typed: String = t
            .to_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                if i > 0 && i % 10 == 0 {
                    vec![if i % 20 == 0 { '\n' } else { ' ' }, c]
                } else {
                    vec![c]
                }
            })
            .collect();
        assert_eq!(*Share::parse(&typed).unwrap().expose_text(), **t);
    }
    let got = combine_texts(&config, &[&*texts[0], &*texts[2]]).unwrap();
    assert!(same_key(&master, &got));
}

#[test]
fn debug_shows_index_only() {
    let (master, config, shares) = init(2, 2).unwrap();
    let dbg = format!("{:?}", shares[1]);
    assert_eq!(dbg, "Share { index: 2, .. }");
    let text = shares[1].expose_text();
    let body = text.split('-').nth(4).unwrap();
    for out in [
        format!("{shares:?}"),
        format!("{master:?}"),
        format!("{config:?}"),
    ] {
        assert!(!out.contains(body), "{out}");
    }
}

#[test]
fn corrupted_text_names_the_share() {
    let (_m, config, shares) = init(2, 3).unwrap();
    let text = shares[1].expose_text().to_string();
    let index_end = SHARE_PREFIX.len() + 1;
    // Change every character after the index to another valid one: always refused.
    for (pos, c) in text.char_indices().skip(index_end + 1) {
        if c == '-' {
            continue;
        }
        let repl = match c {
            'a' => 'b',
            '0' => '1',
            '7' => '2',
            'f' => '0',
            _ => 'a',
        };
        let mut t = text.clone();
        t.replace_range(pos..pos + 1, &repl.to_string());
        assert_bad_share(Share::parse(&t), "share 2: corrupted (checksum mismatch)");
        assert_bad_share(
            combine_texts(&config, &[&*shares[0].expose_text(), &t]),
            "share 2: corrupted (checksum mismatch)",
        );
    }
    // Changing the index itself is caught as well (it names the index as typed).
    let mut t = text.clone();
    t.replace_range(index_end - 1..index_end, "3");
    assert_bad_share(Share::parse(&t), "share 3: corrupted (checksum mismatch)");
    // Truncation anywhere after the index.
    for cut in index_end + 1..text.len() {
        let r = Share::parse(&text[..cut]);
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.rv(), Rv::Vendor(vendor::BAD_SHARE));
        assert!(e.detail().starts_with("share 2: corrupted"), "{cut}: {e}");
    }
    assert_bad_share(
        Share::parse(&text[..text.len() - 1]),
        "share 2: corrupted (checksum missing or truncated)",
    );
    assert_bad_share(
        Share::parse(&text[..text.len() - 20]),
        "share 2: corrupted (truncated: checksum missing)",
    );
    assert_bad_share(Share::parse("hello"), "not a Tresor share");
    assert_bad_share(
        Share::parse("tresor-share-v2-1-abc-00000000"),
        "unsupported share format 'v2'",
    );
    assert_bad_share(Share::parse(&format!("{text}-x")), "share 2: corrupted");
    let e = Share::parse("tresor-share-secretstuff-1").unwrap_err();
    assert!(
        e.detail().contains("unsupported or corrupted share format"),
        "{e}"
    );
    assert!(!e.detail().contains("secret"), "{e}");
}

#[test]
fn share_of_another_cluster() {
    let (_a, config_a, shares_a) = init(2, 3).unwrap();
    let (_b, _config_b, shares_b) = init(2, 3).unwrap();
    let detail = format!(
        "share 2: belongs to another cluster ({}), not this one ({})",
        shares_b[1].cluster_id(),
        config_a.cluster_id()
    );
    assert_bad_share(check_share(&config_a, &shares_b[1]), &detail);
    assert_bad_share(
        combine(&config_a, &[shares_a[0].clone(), shares_b[1].clone()]),
        &detail,
    );
}

#[test]
fn feldman_rejects_altered_value_with_valid_checksum() {
    let (master, config, shares) = init(3, 5).unwrap();
    for s in &shares {
        check_share(&config, s).unwrap();
    }
    // Alter the value of share 3 and re-encode it: the checksum is recomputed, so the text
    // parses, and only Feldman verification can tell.
    let mut forged = shares[2].clone();
    forged.value[31] ^= 0x01;
    let text = forged.expose_text();
    let parsed = Share::parse(&text).unwrap();
    assert_eq!(parsed.index(), 3);
    assert_bad_share(
        check_share(&config, &parsed),
        "share 3: not a valid share of this cluster",
    );
    assert_bad_share(
        combine(&config, &[shares[0].clone(), shares[1].clone(), parsed]),
        "share 3: not a valid share of this cluster",
    );
    // A genuine share presented under another index fails too.
    let mut moved = shares[0].clone();
    moved.index = 4;
    assert_bad_share(
        check_share(&config, &moved),
        "share 4: not a valid share of this cluster",
    );
    // Out-of-range index.
    let mut far = shares[0].clone();
    far.index = 6;
    assert_bad_share(check_share(&config, &far), "share 6: index out of range");
    // The genuine shares still work.
    assert!(same_key(&master, &combine(&config, &shares[..3]).unwrap()));
}

#[test]
fn duplicate_index() {
    let (_m, config, shares) = init(2, 3).unwrap();
    assert_bad_share(
        combine(&config, &[shares[0].clone(), shares[0].clone()]),
        "share 1: given more than once",
    );
    assert_bad_share(
        combine(
            &config,
            &[shares[1].clone(), shares[2].clone(), shares[1].clone()],
        ),
        "share 2: given more than once",
    );
}

#[test]
fn kcv_mismatch() {
    let (_m, mut config, shares) = init(2, 3).unwrap();
    config.kcv[0] ^= 0x80;
    // Each share still passes Feldman verification ...
    check_share(&config, &shares[0]).unwrap();
    // ... but the combined key is refused.
    assert_bad_share(
        combine(&config, &shares[..2]),
        "the combined key does not match this cluster's key check value",
    );
}

#[test]
fn config_json_and_validation() {
    let (_m, config, shares) = init(2, 3).unwrap();
    let json = serde_json::to_string(&config).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["share_count"], 3);
    assert_eq!(v["cluster_id"], config.cluster_id().to_string());
    assert_eq!(v["commitments"].as_array().unwrap().len(), 2);
    assert_eq!(v["commitments"][0].as_str().unwrap().len(), 2 * POINT_LEN);
    assert_eq!(v["kcv"].as_str().unwrap().len(), 64);
    let back: SealConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    back.validate().unwrap();
    // Unknown fields are refused.
    let mut extra = v.clone();
    extra["secret"] = serde_json::json!("x");
    assert!(serde_json::from_value::<SealConfig>(extra).is_err());

    let integrity = |c: &SealConfig, what: &str| {
        let e = combine(c, &shares[..2]).unwrap_err();
        assert_eq!(e.rv(), Rv::Vendor(vendor::INTEGRITY), "{e}");
        assert!(e.detail().contains(what), "{e}");
        let e = check_share(c, &shares[0]).unwrap_err();
        assert_eq!(e.rv(), Rv::Vendor(vendor::INTEGRITY), "{e}");
    };
    let mut c = config.clone();
    c.version = 2;
    integrity(&c, "unsupported version 2");
    let mut c = config.clone();
    c.threshold = 4;
    integrity(&c, "bad threshold 4 of 3");
    let mut c = config.clone();
    c.commitments.pop();
    integrity(&c, "1 commitments for threshold 2");
    let mut c = config.clone();
    c.commitments[1] = vec![0x02; POINT_LEN - 1];
    integrity(&c, "commitment 1 is not a P-256 point");
    let mut c = config.clone();
    c.commitments[0][0] ^= 0x01; // 02 <-> 03: the negated point, still valid
    assert!(c.validate().is_ok());
    assert_bad_share(
        check_share(&c, &shares[0]),
        "share 1: not a valid share of this cluster",
    );
}

#[test]
fn init_parameters() {
    for (m, n) in [(0, 1), (2, 1), (1, 256), (0, 0), (256, 256)] {
        let e = init(m, n).unwrap_err();
        assert_eq!(e.rv(), Rv::ArgumentsBad, "({m},{n}): {e}");
    }
    let (_m, config, shares) = init(2, 255).unwrap();
    assert_eq!(config.share_count(), 255);
    assert_eq!(shares.last().unwrap().index(), 255);
    assert!(shares
        .last()
        .unwrap()
        .expose_text()
        .starts_with("tresor-share-v1-255-"));
}

#[test]
fn base32_known_answers() {
    // RFC 4648 test vectors, lowercase and unpadded.
    for (raw, enc) in [
        ("", ""),
        ("f", "my"),
        ("fo", "mzxq"),
        ("foo", "mzxw6"),
        ("foob", "mzxw6yq"),
        ("fooba", "mzxw6ytb"),
        ("foobar", "mzxw6ytboi"),
    ] {
        let mut s = String::new();
        base32_encode_into(raw.as_bytes(), &mut s);
        assert_eq!(s, enc);
        assert_eq!(&**base32_decode(enc).unwrap(), raw.as_bytes());
    }
    assert!(base32_decode("mz").is_none()); // non-zero trailing bits
    assert!(base32_decode("m1").is_none());
}

proptest! {
    #[test]
    fn prop_parse_never_panics(s in "\\PC*") {
        let _ = Share::parse(&s);
    }

    #[test]
    fn prop_parse_prefixed_never_panics(s in "[a-z0-9\\-]{0,120}") {
        let _ = Share::parse(&format!("{SHARE_PREFIX}{s}"));
    }

    #[test]
    fn prop_base32_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut s = String::new();
        base32_encode_into(&data, &mut s);
        prop_assert_eq!(&**base32_decode(&s).unwrap(), &data[..]);
    }
}

#[test]
fn parse_random_share_like_texts() {
    // Structured fuzzing: well-formed shape, random body, valid checksum -> parse either
    // succeeds with a checked value or fails cleanly (no panic).
    let mut rng = OsslRng::new();
    for _ in 0..200 {
        let mut value = [0u8; 32];
        let Ok(()) = rng.try_fill_bytes(&mut value);
        if value[0] & 1 == 0 {
            value[0] = 0xff; // often above the group order
        }
        let s = Share {
            index: 7,
            cluster_id: [1; 16],
            value,
        };
        match Share::parse(&s.expose_text()) {
            Ok(p) => assert_eq!(p.value, value),
            Err(e) => assert!(e.detail().contains("share 7: value out of range"), "{e}"),
        }
    }
}
