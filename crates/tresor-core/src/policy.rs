//! Smart Key Attribute (SKA) approval policies, as carried by keys.
//!
//! The JSON shape is the Securosys one (compat §4): a policy has four rules (use, block,
//! unblock, modify) and a key status; a rule is a list of tokens of which any one suffices; a
//! token is a list of groups that must all be satisfied; a group needs `quorum` approvals from
//! its list of approver keys; `timelock`/`timeout` are seconds, multiples of 60. A `null` rule
//! needs no approval.
//!
//! This module stores, validates and reports policies. Until approval verification lands, the
//! engine refuses (fails closed) any operation whose rule requires approvals.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Rv};

/// The approval policy of a key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Approvals needed for sign, decrypt, unwrap and certificate operations.
    #[serde(default)]
    pub rule_use: Option<Rule>,
    /// Approvals needed to block the key.
    #[serde(default)]
    pub rule_block: Option<Rule>,
    /// Approvals needed to unblock the key.
    #[serde(default)]
    pub rule_unblock: Option<Rule>,
    /// Approvals needed to change the policy.
    #[serde(default)]
    pub rule_modify: Option<Rule>,
    /// Whether the key is blocked.
    #[serde(default)]
    pub key_status: KeyStatus,
}

/// The key status part of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyStatus {
    /// A blocked key refuses sign, decrypt and unwrap.
    #[serde(default)]
    pub blocked: bool,
}

/// A rule: any one token suffices.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// A token: all its groups must be satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    /// Minimum wait after the request timestamp, seconds (multiple of 60).
    #[serde(default)]
    pub timelock: u64,
    /// Maximum age of the request, seconds (multiple of 60; 0 = unlimited).
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// A group: `quorum` of its approvers must approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub quorum: u32,
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

/// The kind of an approver credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalType {
    /// `value` is a base64 DER SubjectPublicKeyInfo.
    PublicKey,
    /// `value` is a base64 DER X.509 certificate.
    Certificate,
    /// `name` names an onboarded approver; `value` is its certificate.
    OnboardedApproverCertificate,
}

/// One approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    #[serde(rename = "type")]
    pub kind: ApprovalType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Base64 DER (SPKI or certificate), no newlines.
    #[serde(default)]
    pub value: String,
}

/// The four operations a policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Use,
    Block,
    Unblock,
    Modify,
}

impl RuleKind {
    /// Name for messages and the attestation document.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Use => "rule_use",
            RuleKind::Block => "rule_block",
            RuleKind::Unblock => "rule_unblock",
            RuleKind::Modify => "rule_modify",
        }
    }
}

impl Policy {
    /// Parse and validate Securosys policy JSON.
    pub fn from_json(json: &[u8]) -> Result<Policy> {
        let p: Policy = serde_json::from_slice(json)
            .map_err(|e| Error::new(Rv::AttributeValueInvalid, format!("policy JSON: {e}")))?;
        p.validate()?;
        Ok(p)
    }

    /// The policy as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialization of these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// The rule for an operation.
    pub fn rule(&self, kind: RuleKind) -> Option<&Rule> {
        match kind {
            RuleKind::Use => self.rule_use.as_ref(),
            RuleKind::Block => self.rule_block.as_ref(),
            RuleKind::Unblock => self.rule_unblock.as_ref(),
            RuleKind::Modify => self.rule_modify.as_ref(),
        }
    }

    /// True if the operation governed by `kind` needs approvals that must be collected.
    pub fn requires_approval(&self, kind: RuleKind) -> bool {
        self.rule(kind).is_some_and(|r| !r.always_fulfilled())
    }

    /// Check the structural rules: times are multiples of 60, quorums are reachable, approver
    /// values decode to keys or certificates, names are present, a key created blocked can be
    /// unblocked.
    pub fn validate(&self) -> Result<()> {
        for kind in [
            RuleKind::Use,
            RuleKind::Block,
            RuleKind::Unblock,
            RuleKind::Modify,
        ] {
            if let Some(rule) = self.rule(kind) {
                rule.validate(kind.name())?;
            }
        }
        if self.key_status.blocked && self.rule_unblock.is_none() {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "policy: a key created blocked needs a ruleUnblock",
            ));
        }
        Ok(())
    }
}

impl Rule {
    /// A rule with no tokens, or with a token without groups, is satisfied by no approvals
    /// ("always fulfillable"); a rule whose every token has a group is not.
    pub fn always_fulfilled(&self) -> bool {
        self.tokens.is_empty()
            || self
                .tokens
                .iter()
                .any(|t| t.groups.iter().all(|g| g.quorum == 0))
    }

    fn validate(&self, rule: &str) -> Result<()> {
        let bad = |msg: String| {
            Err(Error::new(
                Rv::AttributeValueInvalid,
                format!("policy {rule}: {msg}"),
            ))
        };
        for t in &self.tokens {
            if t.name.is_empty() {
                return bad("a token has no name".into());
            }
            if t.timelock % 60 != 0 || t.timeout % 60 != 0 {
                return bad(format!(
                    "token '{}': timelock and timeout must be multiples of 60 seconds",
                    t.name
                ));
            }
            if t.timeout != 0 && t.timelock >= t.timeout {
                return bad(format!(
                    "token '{}': timelock must be shorter than timeout",
                    t.name
                ));
            }
            for g in &t.groups {
                if g.name.is_empty() {
                    return bad(format!("token '{}': a group has no name", t.name));
                }
                if g.quorum as usize > g.approvals.len() {
                    return bad(format!(
                        "group '{}': quorum {} exceeds its {} approvers",
                        g.name,
                        g.quorum,
                        g.approvals.len()
                    ));
                }
                for a in &g.approvals {
                    a.validate().map_err(|e| {
                        Error::new(
                            Rv::AttributeValueInvalid,
                            format!("policy {rule}, group '{}': {}", g.name, e.detail()),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}

impl Approval {
    fn validate(&self) -> Result<()> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(self.value.as_bytes())
            .map_err(|_| Error::new(Rv::AttributeValueInvalid, "approval value is not base64"))?;
        match self.kind {
            ApprovalType::PublicKey => {
                openssl::pkey::PKey::public_key_from_der(&der).map_err(|_| {
                    Error::new(
                        Rv::AttributeValueInvalid,
                        "approval value is not a DER public key",
                    )
                })?;
            }
            ApprovalType::Certificate | ApprovalType::OnboardedApproverCertificate => {
                if self.kind == ApprovalType::OnboardedApproverCertificate && self.name.is_none() {
                    return Err(Error::new(
                        Rv::AttributeValueInvalid,
                        "an onboarded approver needs a name",
                    ));
                }
                openssl::x509::X509::from_der(&der).map_err(|_| {
                    Error::new(
                        Rv::AttributeValueInvalid,
                        "approval value is not a DER certificate",
                    )
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approver_b64() -> String {
        let k = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group"),
        )
        .expect("key");
        let pk = openssl::pkey::PKey::from_ec_key(k).expect("pkey");
        base64::engine::general_purpose::STANDARD.encode(pk.public_key_to_der().expect("der"))
    }

    fn one_of_one(quorum: u32) -> Rule {
        Rule {
            tokens: vec![Token {
                name: "t".into(),
                timelock: 0,
                timeout: 600,
                groups: vec![Group {
                    name: "g".into(),
                    quorum,
                    approvals: vec![Approval {
                        kind: ApprovalType::PublicKey,
                        name: Some("a".into()),
                        value: approver_b64(),
                    }],
                }],
            }],
        }
    }

    #[test]
    fn securosys_json_round_trips() {
        let json = format!(
            r#"{{"ruleUse":{{"tokens":[{{"name":"main","timelock":0,"timeout":0,"groups":[{{"name":"g","quorum":1,"approvals":[{{"type":"public_key","name":"a","value":"{}"}}]}}]}}]}},"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{{"blocked":false}}}}"#,
            approver_b64()
        );
        let p = Policy::from_json(json.as_bytes()).expect("valid");
        assert!(p.requires_approval(RuleKind::Use));
        assert!(!p.requires_approval(RuleKind::Block));
        let again = Policy::from_json(p.to_json().as_bytes()).expect("re-parse");
        assert_eq!(p, again);
    }

    #[test]
    fn structural_errors_are_named() {
        let mut r = one_of_one(2);
        let p = Policy {
            rule_use: Some(r.clone()),
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .detail()
            .contains("quorum 2 exceeds"));
        r.tokens[0].groups[0].quorum = 1;
        r.tokens[0].timeout = 90;
        let p = Policy {
            rule_use: Some(r),
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .detail()
            .contains("multiples of 60"));
        let p = Policy {
            key_status: KeyStatus { blocked: true },
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().rv(), Rv::TemplateInconsistent);
        let mut r = one_of_one(1);
        r.tokens[0].groups[0].approvals[0].value = "bm90IGEga2V5".into();
        let p = Policy {
            rule_use: Some(r),
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .detail()
            .contains("not a DER public key"));
    }

    #[test]
    fn empty_and_groupless_rules_need_no_approval() {
        let p = Policy {
            rule_use: Some(Rule::default()),
            ..Default::default()
        };
        assert!(!p.requires_approval(RuleKind::Use));
        let p = Policy {
            rule_use: Some(Rule {
                tokens: vec![Token {
                    name: "t".into(),
                    timelock: 0,
                    timeout: 0,
                    groups: vec![],
                }],
            }),
            ..Default::default()
        };
        assert!(!p.requires_approval(RuleKind::Use));
        let p = Policy {
            rule_use: Some(one_of_one(1)),
            ..Default::default()
        };
        assert!(p.requires_approval(RuleKind::Use));
    }
}
