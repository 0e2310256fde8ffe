use std::path::Path;

use certresponder_inventory::{CertId, CertKind, ManagedCert, Paths};
use certresponder_issuers::RevocationReason;
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::signals::{Confidence, Finding, Signal};

fn cert(name: &str, owner: &str, tags: &[&str], kind: CertKind) -> ManagedCert {
    ManagedCert {
        tags: tags.iter().map(|t| (*t).to_string()).collect(),
        kind,
        issuer: Some("internal".into()),
        ..ManagedCert::new(
            CertId::new(name).unwrap(),
            owner,
            Paths::cert_only("/srv/cert.pem"),
            "inventory.toml",
        )
    }
}

fn web() -> ManagedCert {
    cert(
        "web",
        "team-web@example.com",
        &["prod"],
        CertKind::TlsServer,
    )
}

fn at(hours: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
}

fn signal(family: &str, f: &Finding, detected_hours: i64) -> Signal {
    Signal::from_finding("web", family, f, Some("fp"), "scan", at(detected_hours))
}

fn compromised(check: &'static str) -> Signal {
    signal("weak", &Finding::compromised(check, "broken", json!({})), 0)
}

fn violation(check: &'static str) -> Signal {
    signal(
        "weak",
        &Finding::violation(check, "violation", json!({})),
        0,
    )
}

fn warning(check: &'static str) -> Signal {
    signal("weak", &Finding::warning(check, "warning", json!({})), 0)
}

fn with_confidence(check: &'static str, family: &str, c: Confidence) -> Signal {
    let mut f = Finding::warning(check, "finding", json!({}));
    f.confidence = c;
    signal(family, &f, 0)
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(Path::new("policy.toml"), text)
}

fn parse_err(text: &str) -> PolicyError {
    parse(text).expect_err("the policy must be rejected")
}

const CATCH_ALL: &str = "\n[[rule]]\nname = \"rest\"\naction = \"escalate\"\n";

#[test]
fn default_policy_parses_with_documented_defaults() {
    let p = Policy::builtin();
    assert_eq!(p.source, BUILTIN_SOURCE);
    assert_eq!(p.limits, Limits::default());
    assert_eq!(p.limits.max_revocations, 10);
    assert_eq!(p.limits.max_revocations_per_owner, 5);
    assert_eq!(p.limits.window, Duration::hours(1));
    assert_eq!(p.escalate_margin, Duration::hours(6));
    assert!(
        p.owners.is_empty(),
        "the example owners block is commented out"
    );
    let last = p.rules.last().unwrap();
    assert_eq!(last.action, Action::Escalate);
    assert!(last.checks.is_empty() && last.min_confidence.is_none());
    // No default rule revokes on its own below high confidence.
    for r in &p.rules {
        if r.action.revokes() && r.approval == Approval::Auto {
            assert!(r.min_confidence >= Some(Confidence::High), "{}", r.name);
        }
    }
}

#[test]
fn default_rules_map_each_check() {
    let p = Policy::builtin();
    let entry = web();
    let rule = |s: &Signal| p.rule_for(s, &entry).map(|r| r.name.clone()).unwrap();

    for check in [
        "blocklisted_key",
        "debian_weak_key",
        "fermat",
        "roca",
        "shared_prime",
        "rsa_small_d",
        "rsa_small_factor",
    ] {
        let s = compromised(check);
        assert_eq!(rule(&s), "key-compromise", "{check}");
        let d = p.decide(&[&s], &entry);
        assert_eq!(d.action, Action::RevokeReissue, "{check}");
        assert_eq!(d.approval, Approval::Auto, "{check}");
        assert_eq!(d.reason, Some(RevocationReason::KeyCompromise), "{check}");
        assert_eq!(d.deadline, Some(at(24)), "{check}");
    }
    // `report-compromise` records key_exposed in the exposure family.
    let reported = signal(
        "exposure",
        &Finding::compromised("key_exposed", "reported", json!({})),
        0,
    );
    assert_eq!(rule(&reported), "key-compromise");

    for check in [
        "rsa_modulus_small",
        "rsa_modulus_not_multiple_of_8",
        "rsa_exponent_bad",
        "rsa_invalid",
        "ec_curve_disallowed",
        "ec_point_invalid",
        "signature_algorithm_weak",
        "validity_too_long",
        "missing_san",
    ] {
        let s = violation(check);
        assert_eq!(rule(&s), "weak-parameters", "{check}");
        let d = p.decide(&[&s], &entry);
        assert_eq!(d.action, Action::RevokeReissue, "{check}");
        assert_eq!(d.reason, Some(RevocationReason::Superseded), "{check}");
        assert_eq!(d.deadline, Some(at(120)), "{check}");
    }
    // A proven-broken RSA key is key compromise, not a rule violation.
    let broken = compromised("rsa_invalid");
    assert_eq!(rule(&broken), "broken-key-parameters");
    assert_eq!(
        p.decide(&[&broken], &entry).reason,
        Some(RevocationReason::KeyCompromise)
    );

    let ct = with_confidence("ct_unauthorized_issuance", "ct", Confidence::High);
    assert_eq!(rule(&ct), "ct-unauthorized-issuance");
    assert_eq!(p.decide(&[&ct], &entry).action, Action::Escalate);

    for (check, family, c) in [
        ("expiring", "weak", Confidence::Medium),
        ("expired", "weak", Confidence::High),
        ("renewal_window_open", "ca", Confidence::High),
    ] {
        let s = with_confidence(check, family, c);
        assert_eq!(rule(&s), "renewal", "{check}");
        let d = p.decide(&[&s], &entry);
        assert_eq!(d.action, Action::Reissue, "{check}");
        assert_eq!(d.approval, Approval::Auto, "{check}");
        assert_eq!(d.reason, None, "{check}: a reissue revokes nothing");
    }
    for check in ["revoked_at_ca", "issuer_distrusted"] {
        let s = with_confidence(check, "ca", Confidence::High);
        assert_eq!(rule(&s), "issuer-problem", "{check}");
        assert_eq!(p.decide(&[&s], &entry).action, Action::Reissue);
    }
    let sct = with_confidence("sct_insufficient", "ct", Confidence::Medium);
    let d = p.decide(&[&sct], &entry);
    assert_eq!((d.action, d.approval), (Action::Reissue, Approval::Owner));

    // Low confidence and everything else: escalated, never acted on.
    for s in [
        warning("key_file_permissions"),
        warning("rsa_exponent_bad"),
        warning("shared_prime"),
        with_confidence("fermat", "weak", Confidence::Low),
        with_confidence("expiring", "weak", Confidence::Low),
        with_confidence("unparseable", "weak", Confidence::High),
    ] {
        assert_eq!(rule(&s), "escalate-everything-else", "{}", s.check);
        assert_eq!(p.decide(&[&s], &entry).action, Action::Escalate);
    }
}

#[test]
fn every_check_in_the_vocabulary_has_a_family_and_is_unique() {
    let names = vocab::check_names();
    assert_eq!(names.len(), 32);
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "{n} twice");
        assert!(vocab::FAMILIES.contains(&vocab::family_of(n).unwrap()));
    }
}

#[test]
fn first_match_wins() {
    let p = parse(
        r#"
[[rule]]
name = "prod-fermat-needs-owner"
checks = ["fermat"]
tags = ["prod"]
action = "revoke_reissue"
approval = "owner"

[[rule]]
name = "fermat"
checks = ["fermat"]
min_confidence = "high"
action = "revoke_reissue"
"#,
    )
    .unwrap();
    let s = compromised("fermat");
    assert_eq!(
        p.rule_for(&s, &web()).unwrap().name,
        "prod-fermat-needs-owner"
    );
    let staging = cert("stage", "team-web@example.com", &[], CertKind::TlsServer);
    assert_eq!(p.rule_for(&s, &staging).unwrap().name, "fermat");
    // Nothing matches a low-confidence finding on staging: the implicit escalation.
    let low = with_confidence("fermat", "weak", Confidence::Low);
    assert!(p.rule_for(&low, &staging).is_none());
    let d = p.decide(&[&low], &staging);
    assert_eq!(d.action, Action::Escalate);
    assert_eq!(d.rule.name, NO_RULE);
    assert_eq!(d.rule.line, 0);
    assert!(d.why.contains("no rule matched"), "{}", d.why);
}

#[test]
fn decide_takes_the_strongest_action_and_the_earliest_deadline() {
    let p = Policy::builtin();
    let entry = web();
    // Detected at different times: the rule violation first, the compromise a day later.
    let small = signal(
        "weak",
        &Finding::violation("rsa_modulus_small", "1024 bits", json!({})),
        0,
    );
    let fermat = signal(
        "weak",
        &Finding::compromised("fermat", "close primes", json!({})),
        24,
    );
    let expiring = with_confidence("expiring", "weak", Confidence::Medium);
    let d = p.decide(&[&expiring, &small, &fermat], &entry);
    assert_eq!(d.action, Action::RevokeReissue);
    assert_eq!(d.reason, Some(RevocationReason::KeyCompromise));
    assert_eq!(d.deadline, Some(at(48)), "fermat's 24h beats the 5 days");
    assert_eq!(d.rule.name, "key-compromise");
    assert_eq!(d.rule.source, BUILTIN_SOURCE);
    assert_eq!(
        d.signals,
        vec![
            expiring.dedup_key.clone(),
            small.dedup_key.clone(),
            fermat.dedup_key.clone()
        ]
    );
    assert_eq!(d.matches.len(), 3);
    assert_eq!(d.matches[0].action, Action::Reissue);
    assert_eq!(d.matches[0].rule.name, "renewal");
    assert_eq!(d.matches[2].rule.name, "key-compromise");
    assert!(
        d.why.starts_with(
            "rsa_modulus_small (high): rule `weak-parameters` (built-in default policy line"
        ),
        "{}",
        d.why
    );
    assert!(
        d.why.contains("fermat (confirmed): rule `key-compromise`"),
        "{}",
        d.why
    );
    assert!(d.why.contains("expiring -> reissue"), "{}", d.why);

    let d = p.decide(&[&expiring], &entry);
    assert_eq!(d.action, Action::Reissue);
    assert_eq!(d.reason, None);
    assert_eq!(d.deadline, None);

    let perms = warning("key_file_permissions");
    let d = p.decide(&[&perms], &entry);
    assert_eq!(d.action, Action::Escalate);
    assert_eq!(d.approval, Approval::Auto);
    assert_eq!(d.rule.name, "escalate-everything-else");

    let d = p.decide(&[&perms, &expiring], &entry);
    assert_eq!(d.action, Action::Reissue);
}

#[test]
fn decide_combines_approval_contain_first_and_reasons() {
    let p = parse(
        r#"
[[rule]]
name = "exposed"
checks = ["key_exposed"]
min_confidence = "high"
action = "revoke_reissue"
contain_first = true
deadline = "12h"

[[rule]]
name = "small"
checks = ["rsa_modulus_small"]
min_confidence = "high"
action = "revoke_reissue"
approval = "two_person"

[[rule]]
name = "san"
checks = ["missing_san"]
min_confidence = "high"
action = "revoke_reissue"
approval = "owner"
reason = "cessationOfOperation"
"#,
    )
    .unwrap();
    let entry = web();
    let exposed = signal(
        "exposure",
        &Finding::compromised("key_exposed", "leaked", json!({})),
        0,
    );
    let small = violation("rsa_modulus_small");
    let san = violation("missing_san");
    let d = p.decide(&[&small, &exposed], &entry);
    assert_eq!(d.approval, Approval::TwoPerson, "the strictest approval");
    assert!(d.contain_first);
    assert_eq!(
        d.reason,
        Some(RevocationReason::KeyCompromise),
        "no rule reason: the finding implies keyCompromise"
    );
    assert_eq!(d.deadline, Some(at(12)), "the rule's deadline");
    assert_eq!(d.rule.name, "exposed", "the first rule in the file sets it");

    let d = p.decide(&[&small], &entry);
    assert_eq!(d.reason, Some(RevocationReason::Superseded));
    assert!(!d.contain_first);
    let d = p.decide(&[&small, &san], &entry);
    assert_eq!(d.reason, Some(RevocationReason::CessationOfOperation));

    // A finding that implies no reason: superseded.
    let mut quiet = violation("rsa_modulus_small");
    quiet.revocation_reason = None;
    quiet.deadline_hours = None;
    let d = p.decide(&[&quiet], &entry);
    assert_eq!(d.reason, Some(RevocationReason::Superseded));
    assert_eq!(d.deadline, None);

    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["action"], "revoke_reissue");
    assert_eq!(json["approval"], "two_person");
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn tags_kinds_and_owners_match() {
    let p = parse(
        r#"
[[rule]]
name = "prod-agents"
tags = ["prod", "pci"]
kinds = ["agent", "service-account"]
action = "reissue"

[[rule]]
name = "web-team"
owners = ["team-web@example.com"]
action = "ignore"
"#,
    )
    .unwrap();
    let s = violation("missing_san");
    let name = |e: &ManagedCert| p.rule_for(&s, e).map(|r| r.name.clone());
    let agent = |tags: &[&str], kind| cert("a", "ops@example.com", tags, kind);
    assert_eq!(
        name(&agent(&["pci", "prod", "eu"], CertKind::Agent)).as_deref(),
        Some("prod-agents")
    );
    assert_eq!(
        name(&agent(&["prod", "pci"], CertKind::ServiceAccount)).as_deref(),
        Some("prod-agents")
    );
    assert_eq!(name(&agent(&["prod"], CertKind::Agent)), None, "all tags");
    assert_eq!(
        name(&agent(&["prod", "pci"], CertKind::TlsServer)),
        None,
        "kind"
    );
    assert_eq!(name(&web()).as_deref(), Some("web-team"));
    let r = &p.rules[0];
    assert_eq!(
        r.mismatch("missing_san", "weak", Confidence::High, &web())
            .as_deref(),
        Some("the certificate lacks the tag `pci`")
    );
    let d = p.decide(&[&s], &web());
    assert_eq!(d.action, Action::Ignore);
    assert_eq!(d.deadline, None);
}

#[test]
fn approvers_per_owner() {
    let p = parse(&format!(
        "[owners.\"team-web@example.com\"]\napprovers = [\"alice\", \"bob\"]\n[owners.\"ops@example.com\"]\n{CATCH_ALL}"
    ))
    .unwrap();
    assert_eq!(p.approvers("team-web@example.com"), ["alice", "bob"]);
    assert!(p.approvers("ops@example.com").is_empty());
    assert!(p.approvers("nobody@example.com").is_empty());
}

#[test]
fn limits_and_margins() {
    let p = parse(&format!(
        "[limits]\nmax_revocations = 0\nmax_revocations_per_owner = 2\nwindow = \"30m\"\n[approvals]\nescalate_before_deadline = \"90s\"\n{CATCH_ALL}"
    ))
    .unwrap();
    assert_eq!(p.limits.max_revocations, 0, "0: every revocation waits");
    assert_eq!(p.limits.max_revocations_per_owner, 2);
    assert_eq!(p.limits.window, Duration::minutes(30));
    assert_eq!(p.escalate_margin, Duration::seconds(90));

    let e = parse_err(&format!("[limits]\nwindow = \"0h\"\n{CATCH_ALL}"));
    assert_eq!(
        e.to_string(),
        "policy.toml:2: field `limits.window`: must be longer than zero"
    );
    let e = parse_err(&format!("[limits]\nmax_revocations = -1\n{CATCH_ALL}"));
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field.as_deref(), Some("limits.max_revocations"));
    let e = parse_err(&format!("[limits]\nmax_revocation = 3\n{CATCH_ALL}"));
    assert!(e.message.contains("did you mean `max_revocations`?"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(duration::parse("90s"), Ok(Duration::seconds(90)));
    assert_eq!(duration::parse("30m"), Ok(Duration::minutes(30)));
    assert_eq!(duration::parse("24h"), Ok(Duration::hours(24)));
    assert_eq!(duration::parse("5d"), Ok(Duration::days(5)));
    assert_eq!(duration::parse("0s"), Ok(Duration::zero()));
    for bad in [
        "",
        "h",
        "24",
        "1.5h",
        "-3h",
        "3w",
        "24 h",
        "+3h",
        "1h30m",
        "99999999d",
    ] {
        assert!(duration::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(duration::format(Duration::hours(24)), "24h");
    assert_eq!(duration::format(Duration::days(5)), "5d");
    assert_eq!(duration::format(Duration::hours(36)), "36h");
    assert_eq!(duration::format(Duration::seconds(90)), "90s");
    assert_eq!(duration::format(Duration::minutes(30)), "30m");

    let e = parse_err("[[rule]]\nname = \"r\"\naction = \"reissue\"\ndeadline = \"2 days\"\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field.as_deref(), Some("deadline"));
    assert!(e.message.contains("not a duration"), "{e}");
}

#[test]
fn unreachable_rule_names_both_rules_and_lines() {
    let e = parse_err(
        r#"# comment

[[rule]]
name = "weak"
families = ["weak"]
min_confidence = "medium"
action = "revoke_reissue"

[[rule]]
name = "fermat"
checks = ["fermat", "roca"]
min_confidence = "confirmed"
tags = ["prod"]
action = "revoke_reissue"
reason = "keyCompromise"
"#,
    );
    assert_eq!(e.line, Some(9));
    assert_eq!(e.rule.as_deref(), Some("fermat"));
    assert!(
        e.to_string().starts_with(
            "policy.toml:9: rule `fermat`: can never apply: rule `weak` (line 3) comes first"
        ),
        "{e}"
    );

    // Narrower earlier rules do not shadow broader later ones.
    parse(
        r#"
[[rule]]
name = "fermat-prod"
checks = ["fermat"]
tags = ["prod"]
min_confidence = "high"
kinds = ["tls-server"]
owners = ["a@example.com"]
action = "revoke_reissue"

[[rule]]
name = "fermat"
checks = ["fermat"]
min_confidence = "medium"
action = "revoke_reissue"

[[rule]]
name = "exposure"
families = ["exposure"]
action = "escalate"
"#,
    )
    .unwrap();

    // A catch-all shadows everything after it.
    let e = parse_err(&format!(
        "{CATCH_ALL}\n[[rule]]\nname = \"late\"\nchecks = [\"expiring\"]\naction = \"reissue\"\n"
    ));
    assert_eq!(e.line, Some(6));
    assert!(e.message.contains("rule `rest` (line 2)"), "{e}");
}

#[test]
fn contradictory_rules_are_rejected_at_their_line() {
    let e = parse_err(
        "[[rule]]\nname = \"renew\"\nchecks = [\"expiring\"]\naction = \"reissue\"\nreason = \"superseded\"\n",
    );
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field.as_deref(), Some("reason"));
    assert!(
        e.to_string()
            .starts_with("policy.toml:5: rule `renew` field `reason`: "),
        "{e}"
    );

    let e = parse_err(
        "[[rule]]\nname = \"x\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke\"\ncontain_first = true\n",
    );
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(6), Some("contain_first"))
    );

    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"escalate\"\napproval = \"owner\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("approval")));

    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"ignore\"\ndeadline = \"1h\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("deadline")));

    let e = parse_err(
        "[[rule]]\nname = \"x\"\nchecks = [\"expiring\"]\nfamilies = [\"ca\"]\naction = \"reissue\"\n",
    );
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("checks")));

    let e = parse_err(&format!(
        "{CATCH_ALL}[[rule]]\nname = \"rest\"\nchecks = [\"fermat\"]\naction = \"escalate\"\n"
    ));
    assert_eq!(e.line, Some(6));
    assert!(
        e.message.contains("already used by the rule at line 2"),
        "{e}"
    );

    let e = parse_err(
        "[[rule]]\nname = \"x\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke\"\nreason = \"certificateHold\"\n",
    );
    assert_eq!((e.line, e.field.as_deref()), (Some(6), Some("reason")));
}

#[test]
fn automatic_revocation_on_low_confidence_is_rejected() {
    let text = "\n\n[[rule]]\nname = \"trigger-happy\"\nchecks = [\"fermat\"]\naction = \"revoke_reissue\"\n";
    let e = parse_err(text);
    assert_eq!(e.line, Some(3));
    assert_eq!(e.rule.as_deref(), Some("trigger-happy"));
    assert!(
        e.message
            .contains("low confidence must never act on its own: set min_confidence = \"medium\" or higher, or require approval"),
        "{e}"
    );
    let e = parse_err(&text.replace("checks", "min_confidence = \"low\"\nchecks"));
    assert_eq!(e.line, Some(3));
    // Either fix is accepted.
    parse(&text.replace("checks", "min_confidence = \"medium\"\nchecks")).unwrap();
    parse(&text.replace("checks", "approval = \"owner\"\nchecks")).unwrap();
    // Reissue revokes nothing and may act on anything.
    parse(&text.replace("revoke_reissue", "reissue")).unwrap();
}

#[test]
fn unknown_names_are_rejected_with_hints() {
    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"escalate\"\nchekcs = [\"fermat\"]\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:4: rule `x` field `chekcs`: unknown field `chekcs`; did you mean `checks`?"
    );
    let e = parse_err("[[rule]]\nname = \"x\"\nchecks = [\"fermatt\"]\naction = \"escalate\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("checks")));
    assert!(
        e.message
            .contains("unknown check `fermatt`; did you mean `fermat`?"),
        "{e}"
    );
    let e = parse_err("[[rule]]\nname = \"x\"\nfamilies = [\"weakk\"]\naction = \"escalate\"\n");
    assert!(e.message.contains("did you mean `weak`?"), "{e}");
    let e = parse_err("[[rule]]\nname = \"x\"\nkinds = [\"tls_server\"]\naction = \"escalate\"\n");
    assert!(e.message.contains("did you mean `tls-server`?"), "{e}");
    let e = parse_err("[[rule]]\nname = \"x\"\nmin_confidence = \"hihg\"\naction = \"escalate\"\n");
    assert!(e.message.contains("did you mean `high`?"), "{e}");
    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"revoke-reissue\"\n");
    assert!(e.message.contains("did you mean `revoke_reissue`?"), "{e}");
    let e = parse_err(
        "[[rule]]\nname = \"x\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke\"\nreason = \"keyCompromize\"\n",
    );
    assert!(e.message.contains("did you mean `keyCompromise`?"), "{e}");
    let e = parse_err("[[rules]]\nname = \"x\"\naction = \"escalate\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:1: field `rules`: unknown field `rules`; did you mean `rule`?"
    );
    let e = parse_err(&format!(
        "[owners.\"a@example.com\"]\napprover = [\"x\"]\n{CATCH_ALL}"
    ));
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("did you mean `approvers`?"), "{e}");
}

#[test]
fn structural_errors() {
    let e = parse_err("");
    assert!(e.message.contains("no rules"), "{e}");
    assert_eq!(e.line, None);
    let e = parse_err("[limits]\nwindow = \"1h\"\n");
    assert!(e.message.contains("no rules"), "{e}");
    let e = parse_err("[[rule]]\naction = \"escalate\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("name")));
    let e = parse_err("[[rule]]\nname = \"x\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("action")));
    let e = parse_err("[[rule]]\nname = \"x\"\naction = escalate\n");
    assert_eq!(e.line, Some(3));
    assert!(e.message.starts_with("not valid TOML"), "{e}");
    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"escalate\"\ntags = \"prod\"\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("tags")));
    let e = parse_err("[[rule]]\nname = \"x\"\naction = \"escalate\"\nchecks = []\n");
    assert!(e.message.contains("empty list"), "{e}");
    let e = parse_err("rule = 3\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("rule")));
    // Inline tables work too.
    let p = parse("rule = [{ name = \"x\", action = \"escalate\" }]\n").unwrap();
    assert_eq!(p.rules[0].line, 1);
}

#[test]
fn load_uses_the_configured_file_or_the_default() {
    assert_eq!(Policy::load(None).unwrap().source, BUILTIN_SOURCE);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let e = Policy::load(Some(&path)).unwrap_err();
    assert_eq!(e.file, path);
    assert!(e.message.contains("cannot read the policy"), "{e}");
    std::fs::write(&path, CATCH_ALL).unwrap();
    let p = Policy::load(Some(&path)).unwrap();
    assert_eq!(p.source, path.display().to_string());
    assert_eq!(
        p.rules[0].rule_ref(&p.source).describe(),
        "rule `rest` (policy.toml line 2)"
    );
}

#[test]
fn explain_walks_the_rules_in_order() {
    let p = Policy::builtin();
    let e = p.explain(&web(), "key_file_permissions", "exposure", Confidence::Low);
    assert_eq!(e.rules.len(), p.rules.len());
    assert!(e.rules[..e.rules.len() - 1].iter().all(|r| !r.matched));
    assert_eq!(
        e.rules[0].why,
        "check `key_file_permissions` is not among its 9 checks"
    );
    assert_eq!(
        e.rules[1].why,
        "check `key_file_permissions` is not among its checks (rsa_invalid, ec_point_invalid)"
    );
    assert!(e.rules.last().unwrap().matched);
    assert_eq!(e.action, Action::Escalate);
    assert_eq!(e.rule.name, "escalate-everything-else");
    assert_eq!(e.deadline, None);

    let e = p.explain(&web(), "fermat", "weak", Confidence::Confirmed);
    assert_eq!(e.rules.len(), 1);
    assert!(e.rules[0].matched);
    assert_eq!(
        e.rules[0].why,
        "check `fermat` is among its checks; confidence confirmed is at least high"
    );
    assert_eq!(e.action, Action::RevokeReissue);
    assert_eq!(e.reason, Some(RevocationReason::KeyCompromise));
    assert_eq!(e.deadline, Some(Duration::hours(24)));
    assert_eq!(e.deadline_at, None);
    assert!(
        e.why
            .starts_with("fermat (confirmed): rule `key-compromise` (built-in default policy line"),
        "{}",
        e.why
    );

    let e = p.explain(&web(), "fermat", "weak", Confidence::Low);
    assert_eq!(e.action, Action::Escalate);
    assert!(
        e.rules[0]
            .why
            .contains("confidence low is below its min_confidence high"),
        "{:?}",
        e.rules[0]
    );

    let s = violation("rsa_modulus_small");
    let e = p.explain_signal(&web(), &s);
    assert_eq!(e.signal.as_deref(), Some(s.dedup_key.as_str()));
    assert_eq!(e.deadline_at, Some(at(120)));
    assert_eq!(e.reason, Some(RevocationReason::Superseded));
}

#[test]
fn a_trust_condition_matches_only_entries_of_that_trust() {
    let p = parse(&format!(
        "[[rule]]\nname = \"lab\"\ntrust = \"private\"\nchecks = [\"fermat\"]\naction = \"escalate\"\n{CATCH_ALL}"
    ))
    .unwrap();
    let public = ManagedCert {
        trust: Trust::Public,
        ..web()
    };
    let private = ManagedCert {
        trust: Trust::Private,
        ..web()
    };
    let s = compromised("fermat");
    assert_eq!(p.rule_for(&s, &private).unwrap().name, "lab");
    assert_eq!(p.rule_for(&s, &public).unwrap().name, "rest");
    let why = p.rules[0]
        .mismatch("fermat", "weak", Confidence::Confirmed, &public)
        .unwrap();
    assert!(
        why.contains("trust `public` is not its trust `private`"),
        "{why}"
    );
    let e = parse_err("[[rule]]\nname = \"x\"\ntrust = \"internal\"\naction = \"escalate\"\n");
    assert_eq!(e.field.as_deref(), Some("trust"), "{e}");
}

#[test]
fn revoke_short_lived_is_for_revoking_rules_and_carried_into_the_decision() {
    let p = parse(&format!(
        "[[rule]]\nname = \"kc\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\nrevoke_short_lived = false\n{CATCH_ALL}"
    ))
    .unwrap();
    assert!(!p.rules[0].revoke_short_lived);
    let d = p.decide(&[&compromised("fermat")], &web());
    assert!(!d.revoke_short_lived);
    // The default revokes them.
    let p = parse(&format!(
        "[[rule]]\nname = \"kc\"\nchecks = [\"fermat\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\n{CATCH_ALL}"
    ))
    .unwrap();
    assert!(
        p.decide(&[&compromised("fermat")], &web())
            .revoke_short_lived
    );
    let e =
        parse_err("[[rule]]\nname = \"x\"\naction = \"escalate\"\nrevoke_short_lived = false\n");
    assert_eq!(e.field.as_deref(), Some("revoke_short_lived"), "{e}");
    assert!(
        e.to_string().contains("only applies to rules that revoke"),
        "{e}"
    );
    let e = parse_err(
        "[[rule]]\nname = \"x\"\naction = \"revoke\"\napproval = \"owner\"\nrevoke_short_lived = \"no\"\n",
    );
    assert_eq!(e.field.as_deref(), Some("revoke_short_lived"), "{e}");
}
