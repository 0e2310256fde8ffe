//! The demo's configuration and policy files.

use crate::policy::DEFAULT_POLICY;

/// `certresponder.toml`.
pub(super) const CONFIG: &str = r#"# certresponder demo configuration, written by `certresponder quickstart`.
# Relative paths are relative to this file.
state_dir = "state"
inventory_dir = "inventory"
policy = "policy.toml"
expiry_warning_days = 30

[[issuer]]
id = "internal"
type = "internal-ca"
dir = "ca"
common_name = "certresponder demo CA"
validity_days = 90
profiles = { short = 7, medium = 45, long = 60 }
crl_path = "ca/crl.der"
"#;

/// The name of the rule the demo puts in front of the default policy.
pub(super) const DEMO_RULE: &str = "demo-pci-key-compromise";

/// The demo rule, placed before the built-in default policy's text.
const DEMO_POLICY_HEAD: &str = r#"# certresponder demo policy, written by `certresponder quickstart`: the built-in default
# policy (further down, with its explanations) and one demo rule in front of it.
#
# Demo rule: certificates tagged `pci` get the same answer to a key compromise as the
# default's `key-compromise` rule (a new key and certificate, the old one revoked for
# keyCompromise within 24 hours), except that the owner approves first, and the old
# certificate is revoked as soon as the new one is issued (contain first), before it is
# deployed. Rules are tried in order, so this one answers pci certificates; the default's
# `key-compromise` rule still answers every other certificate.
[[rule]]
name = "demo-pci-key-compromise"
tags = ["pci"]
checks = [
  "key_exposed",
  "blocklisted_key",
  "debian_weak_key",
  "fermat",
  "roca",
  "shared_prime",
  "rsa_small_d",
  "rsa_small_factor",
]
min_confidence = "high"
action = "revoke_reissue"
reason = "keyCompromise"
contain_first = true
approval = "owner"
deadline = "24h"

"#;

/// The demo's `policy.toml`.
pub(super) fn policy() -> String {
    format!("{DEMO_POLICY_HEAD}{DEFAULT_POLICY}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::Policy;

    #[test]
    fn the_demo_policy_passes_the_validator_with_the_demo_rule_first() {
        let policy = Policy::parse(Path::new("policy.toml"), &policy()).unwrap();
        let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.first(), Some(&DEMO_RULE));
        assert!(names.contains(&"key-compromise"));
    }

    #[test]
    fn the_demo_config_names_the_policy() {
        let cfg =
            crate::config::Config::parse(Path::new("/demo/certresponder.toml"), CONFIG).unwrap();
        assert_eq!(cfg.policy.as_deref(), Some(Path::new("/demo/policy.toml")));
    }
}
