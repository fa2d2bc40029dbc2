//! The slot view: configured slots grouped by `id` across HSMs.

use secrecy::SecretString;

use super::schema::Problems;
use super::HsmConfig;

/// One PKCS#11 slot: every configured slot entry with this `id`, on any HSM.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The PKCS#11 slot id.
    pub id: u32,
    /// The partition (`user_name`), the same for every target.
    pub user_name: String,
    /// Where the slot can be reached, sorted by priority (lower first), then file order.
    pub targets: Vec<SlotTarget>,
}

/// One place a slot can be reached: an HSM entry and the slot entry under it.
#[derive(Clone, Debug)]
pub struct SlotTarget {
    /// Index of the HSM in [`PrimusConfig::hsms`](super::PrimusConfig::hsms).
    pub hsm_index: usize,
    /// The HSM entry's name, e.g. `hsm1`.
    pub hsm: String,
    /// The slot entry's name, e.g. `slot0`.
    pub slot: String,
    /// The HSM's host.
    pub host: String,
    /// The HSM's port.
    pub port: u16,
    /// The HSM's priority (lower preferred).
    pub priority: u8,
    /// `client_id` of the slot entry.
    pub client_id: Option<String>,
    /// `proxy_user` of the slot entry (CloudHSM service user).
    pub proxy_user: Option<String>,
    /// `proxy_password` of the slot entry. Never printed.
    pub proxy_password: Option<SecretString>,
    /// The root certificate file (PEM) for this target: the HSM's `ca_file`, else
    /// `primus.ca_file`.
    pub ca_file: Option<String>,
}

impl Slot {
    /// Whether more than one target serves this slot.
    pub fn is_redundant(&self) -> bool {
        self.targets.len() > 1
    }

    /// The lowest (best) priority among the targets.
    pub fn best_priority(&self) -> Option<u8> {
        self.targets.iter().map(|t| t.priority).min()
    }
}

/// Groups the slot entries by `id`; the same `id` must use the same `user_name` everywhere.
pub(super) fn build(
    hsms: &[HsmConfig],
    ca_file: Option<&str>,
    problems: &mut Problems,
) -> Vec<Slot> {
    let mut slots: Vec<(Slot, &super::SlotConfig)> = Vec::new();
    for (hsm_index, hsm) in hsms.iter().enumerate() {
        for entry in &hsm.slots {
            let target = SlotTarget {
                hsm_index,
                hsm: hsm.name.clone(),
                slot: entry.name.clone(),
                host: hsm.host.clone(),
                port: hsm.port,
                priority: hsm.priority,
                client_id: entry.client_id.clone(),
                proxy_user: entry.proxy_user.clone(),
                proxy_password: entry.proxy_password.clone(),
                ca_file: hsm.ca_file.clone().or_else(|| ca_file.map(str::to_owned)),
            };
            match slots.iter_mut().find(|(s, _)| s.id == entry.id) {
                Some((slot, first)) => {
                    if slot.user_name != entry.user_name {
                        problems.push(
                            &entry.user_name_position,
                            format!(
                                "slot id {} uses user_name '{}' here but '{}' at {}; \
                                 the same id must name the same partition everywhere",
                                entry.id, entry.user_name, slot.user_name, first.user_name_position
                            ),
                        );
                    }
                    slot.targets.push(target);
                }
                None => slots.push((
                    Slot {
                        id: entry.id,
                        user_name: entry.user_name.clone(),
                        targets: vec![target],
                    },
                    entry,
                )),
            }
        }
    }
    let mut out: Vec<Slot> = slots.into_iter().map(|(s, _)| s).collect();
    for slot in &mut out {
        slot.targets.sort_by_key(|t| t.priority);
    }
    out.sort_by_key(|s| s.id);
    out
}
