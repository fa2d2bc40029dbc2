//! Keeping the password of a PostgreSQL URL out of messages: the URL as it may be shown, and
//! every form of the password to blank out of an error text that might quote it.

/// The URL as it may be shown: the password (in the authority or as a `password` query
/// parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (authority_start, authority_end) = authority_span(url);
    let authority = &url[authority_start..authority_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &url[authority_end..];
    match rest.find('?') {
        Some(q) => {
            out.push_str(&rest[..=q]);
            let query = &rest[q + 1..];
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(rest),
    }
    out
}

/// Every form in which the URL's password could show up in a message: as written and
/// percent-decoded.
pub(super) fn url_secrets(url: &str) -> Vec<String> {
    let (start, end) = authority_span(url);
    let authority = &url[start..end];
    let mut raw = Vec::new();
    if let Some(at) = authority.rfind('@') {
        if let Some((_, password)) = authority[..at].split_once(':') {
            raw.push(password.to_string());
        }
    }
    if let Some((_, query)) = url[end..].split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if k.eq_ignore_ascii_case("password") {
                    raw.push(v.to_string());
                }
            }
        }
    }
    let mut all = Vec::new();
    for secret in raw {
        let decoded = percent_decode(&secret);
        all.push(secret);
        all.push(decoded);
    }
    all.retain(|s| !s.is_empty());
    // Longest first, so that a secret containing another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all
}

/// `msg` with every secret replaced by `***`.
pub(super) fn redact(msg: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(msg.to_string(), |m, s| m.replace(s.as_str(), "***"))
}

/// Byte offsets of the authority (`user:password@host:port`) of `scheme://authority/...`.
fn authority_span(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    (start, end)
}

/// Percent-decoding, leaving malformed escapes as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let cases = [
            (
                "postgres://tresor:s3cret@db:5432/tresor",
                "postgres://tresor:***@db:5432/tresor",
            ),
            (
                "postgresql://u:p%40ss@h/d?sslmode=disable&password=other",
                "postgresql://u:***@h/d?sslmode=disable&password=***",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("postgres://h", "postgres://h"),
            // An '@' inside the password: the last one ends the user info.
            ("postgres://u:a@b@h/d", "postgres://u:***@h/d"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn secrets_are_found_raw_and_decoded() {
        let s = url_secrets("postgres://u:p%40ss@h/d?password=q%20r");
        for want in ["p%40ss", "p@ss", "q%20r", "q r"] {
            assert!(s.contains(&want.to_string()), "{s:?} lacks {want}");
        }
        assert_eq!(
            redact("failed for p@ss and q r", &s),
            "failed for *** and ***"
        );
        assert!(url_secrets("postgres://u@h/d").is_empty());
        assert!(url_secrets("postgres://u:@h/d").is_empty());
    }
}
