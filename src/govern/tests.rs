//! Governor tests on the in-memory store, a real internal CA and real files: every default
//! rule through to the sequence it starts (or not), the breaker holding a storm, approvals by
//! distinct identities, denial, and re-escalation near the deadline.

use chrono::{Duration, Utc};
use serde_json::json;

use super::*;
use crate::policy::vocab;
use crate::respond::CaseState;
use crate::respond::engine::tests::fixture;
use crate::signals::{Confidence, Finding};

/// A stored signal of `check` on `cert`, with the confidence, reason and deadline the
/// vocabulary gives that check (as its detector reports it).
fn signal(
    store: &dyn crate::store::Store,
    cert: &str,
    check: &str,
    confidence: Option<Confidence>,
) -> Signal {
    let info = vocab::check_info(check).unwrap();
    let confidence = confidence.unwrap_or(info.confidence);
    let (reason, hours) = vocab::implied(check, confidence);
    let check: &'static str = info.check;
    let finding = Finding {
        check,
        confidence,
        message: format!("{check} found"),
        revocation_reason: reason,
        deadline_hours: hours,
        evidence: json!({"test": true}),
    };
    // About the certificate deployed now, as a detector's signal is.
    let fp = store
        .bundles(cert)
        .ok()
        .and_then(|h| {
            certresponder_inventory::Bundle::current_of(&h)
                .map(|b| b.fingerprints.cert_sha256.clone())
        })
        .or_else(|| {
            let rec = store.get_cert(cert).ok().flatten()?;
            let pem = std::fs::read(&rec.entry.paths.cert).ok()?;
            certresponder_inventory::inspect::inspect_certificates(&pem)
                .ok()?
                .first()
                .map(|c| c.fingerprints.cert_sha256.clone())
        })
        .unwrap_or_else(|| "fp".into());
    let s = Signal::from_finding(cert, info.family, &finding, Some(&fp), "test", Utc::now());
    store.put_signal(&s).unwrap();
    s
}

/// (certificate, check, confidence override, action, reason, deadline hours, waits)
type Row = (
    &'static str,
    &'static str,
    Option<Confidence>,
    &'static str,
    Option<&'static str>,
    Option<i64>,
    bool,
);

fn person(name: &str, uid: u32) -> Identity {
    Identity {
        name: name.into(),
        uid,
        basis: Default::default(),
    }
}

#[tokio::test]
async fn every_default_rule_leads_to_its_sequence_or_to_a_person() {
    let f = fixture("");
    let engine = f.engine();
    // (certificate, check, confidence override, action, reason, deadline hours, waits)
    let table: &[Row] = &[
        (
            "exposed",
            "key_exposed",
            None,
            "revoke_reissue",
            Some("keyCompromise"),
            Some(24),
            false,
        ),
        (
            "factored",
            "fermat",
            None,
            "revoke_reissue",
            Some("keyCompromise"),
            Some(24),
            false,
        ),
        (
            "broken",
            "rsa_invalid",
            Some(Confidence::Confirmed),
            "revoke_reissue",
            Some("keyCompromise"),
            Some(24),
            false,
        ),
        (
            "small",
            "rsa_modulus_small",
            None,
            "revoke_reissue",
            Some("superseded"),
            Some(120),
            false,
        ),
        (
            "ct",
            "ct_unauthorized_issuance",
            None,
            "escalate",
            None,
            None,
            false,
        ),
        ("renew", "expiring", None, "reissue", None, None, false),
        (
            "revoked",
            "revoked_at_ca",
            Some(Confidence::High),
            "reissue",
            None,
            None,
            false,
        ),
        (
            "sct",
            "sct_insufficient",
            Some(Confidence::Medium),
            "reissue",
            None,
            None,
            true,
        ),
        (
            "perms",
            "key_file_permissions",
            None,
            "escalate",
            None,
            None,
            false,
        ),
        (
            "guess",
            "rsa_modulus_small",
            Some(Confidence::Low),
            "escalate",
            None,
            None,
            false,
        ),
    ];
    let mut signals = Vec::new();
    for (cert, check, conf, ..) in table {
        f.register(&engine, cert, None).await;
        signals.push(signal(engine.store(), cert, check, *conf));
    }
    let gov = Governor::new(engine.clone(), Policy::builtin());
    let (plans, unmatched) = gov.plan(None).unwrap();
    assert!(unmatched.is_empty());
    assert_eq!(plans.len(), table.len());
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    let results = engine.run_cases(&applied.run).await;
    for r in &results {
        let c = r.as_ref().unwrap();
        assert_eq!(
            c.state,
            CaseState::Done,
            "case {} of {}: {:?}",
            c.id,
            c.cert,
            c.error
        );
    }
    let cases = engine.store().list_cases().unwrap();
    for ((cert, check, _, action, reason, hours, waits), sig) in table.iter().zip(&signals) {
        let plan = plans.iter().find(|p| p.cert == *cert).unwrap();
        assert_eq!(plan.decision.action.as_str(), *action, "{check} on {cert}");
        let case = cases.iter().find(|c| c.cert == *cert);
        if *action == "escalate" {
            assert!(case.is_none(), "{check}: escalated, yet a case was opened");
            assert!(applied.escalated.contains(&cert.to_string()));
            let s = engine.store().get_signal(&sig.dedup_key).unwrap().unwrap();
            assert_eq!(s.handled.unwrap().action, "escalate");
            continue;
        }
        let case = case.unwrap_or_else(|| panic!("{check}: no case for {cert}"));
        assert_eq!(case.kind.as_str(), *action);
        assert_eq!(case.reason.map(|r| r.name()), *reason, "{check}");
        assert_eq!(case.trigger.signals, vec![sig.dedup_key.clone()]);
        let rule = &case.decision.as_ref().unwrap().rule;
        assert!(rule.line > 0, "{check}: the rule is named with its line");
        match hours {
            Some(h) => {
                let expected = sig.detected_at + Duration::hours(*h);
                assert_eq!(case.deadline, Some(expected), "{check}");
            }
            None => assert!(case.deadline.is_none() || !case.kind.revokes()),
        }
        if *waits {
            assert_eq!(case.state, CaseState::AwaitingApproval, "{check}");
            assert!(case.journal.is_empty(), "a waiting case runs nothing");
        } else {
            assert_eq!(case.state, CaseState::Done, "{check}");
            assert_eq!(case.revoked_old(), case.kind.revokes(), "{check}");
        }
    }
    // Answered signals are not decided again.
    let (again, _) = gov.plan(None).unwrap();
    assert!(again.is_empty(), "{again:#?}");
    // The decisions are in the audit log with their rules.
    let records = audit::records(engine.store()).unwrap();
    let decisions = records.iter().filter(|r| r.kind == "decision").count();
    assert_eq!(decisions, table.len());
}

#[tokio::test]
async fn a_storm_is_held_by_the_breaker_and_reset_needs_approvals() {
    let f = fixture("");
    let engine = f.engine();
    let mut policy = Policy::builtin();
    policy.limits.max_revocations = 3;
    policy.limits.max_revocations_per_owner = 100;
    for i in 0..8 {
        let name = format!("svc{i}");
        f.register(&engine, &name, None).await;
        signal(engine.store(), &name, "rsa_modulus_small", None);
    }
    let gov = Governor::new(engine.clone(), policy);
    let (plans, _) = gov.plan(None).unwrap();
    let predicted = plans.iter().filter(|p| p.approval.is_some()).count();
    assert_eq!(predicted, 5, "the dry run predicts the breaker");
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    assert_eq!((applied.run.len(), applied.waiting.len()), (3, 5));
    assert!(applied.breaker_opened);
    let status = gov.breaker_status(Utc::now()).unwrap();
    assert!(status.state.open.is_some());
    assert_eq!(status.held, applied.waiting);
    assert_eq!(status.in_window, 3);
    // A person's report is not held by the breaker.
    f.register(&engine, "reported", None).await;
    signal(engine.store(), "reported", "key_exposed", None);
    let (plans, _) = gov.plan(Some(&["reported".to_string()])).unwrap();
    let r = gov
        .apply(&plans, "report", "alice (uid 1000)", true)
        .unwrap();
    assert_eq!((r.run.len(), r.waiting.len()), (1, 0));
    let c = engine.store().get_case(r.run[0]).unwrap().unwrap();
    assert!(c.contain_first, "the reporter asked for contain first");
    // Reset closes the breaker; held cases still wait for a person, then run.
    assert!(gov.breaker_reset(&person("alice", 1000)).unwrap());
    assert!(gov.breaker_status(Utc::now()).unwrap().state.open.is_none());
    let held = applied.waiting[0];
    assert_eq!(
        engine.store().get_case(held).unwrap().unwrap().state,
        CaseState::AwaitingApproval
    );
    let a = gov
        .approve(held, &person("alice", 1000), Utc::now())
        .unwrap();
    assert!(a.runnable);
    let done = engine.run_case(held).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    let kinds: Vec<String> = audit::records(engine.store())
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    for k in ["breaker_open", "breaker_reset", "approval"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} record in {kinds:?}");
    }
}

fn two_person_policy(extra: &str) -> Policy {
    let text = format!(
        "{extra}\n[[rule]]\nname = \"two\"\nchecks = [\"key_exposed\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\napproval = \"two_person\"\ndeadline = \"24h\"\n\n[[rule]]\nname = \"rest\"\naction = \"escalate\"\n"
    );
    Policy::parse(std::path::Path::new("policy.toml"), &text).unwrap()
}

#[tokio::test]
async fn two_person_approval_needs_two_different_people() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    signal(engine.store(), "web", "key_exposed", None);
    let gov = Governor::new(engine.clone(), two_person_policy(""));
    let (plans, _) = gov.plan(None).unwrap();
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    let id = applied.waiting[0];
    // A person who cannot be told apart (a hidden /proc) may not count as one of two.
    let hidden = Identity::unverified(1002, "its login uid cannot be read");
    let refused = gov.approve(id, &hidden, Utc::now()).unwrap_err();
    assert!(
        refused.to_string().contains("cannot be told apart")
            && refused.to_string().contains("2 different people"),
        "{refused}"
    );
    let first = gov.approve(id, &person("alice", 1000), Utc::now()).unwrap();
    assert!(!first.runnable && first.still_needed == 1);
    let again = gov
        .approve(id, &person("alice", 1000), Utc::now())
        .unwrap_err();
    assert!(again.to_string().contains("already approved"), "{again}");
    // The same uid under another name is the same person.
    assert!(gov.approve(id, &person("alias", 1000), Utc::now()).is_err());
    let case = engine.store().get_case(id).unwrap().unwrap();
    assert_eq!(case.state, CaseState::AwaitingApproval);
    let second = gov.approve(id, &person("bob", 1001), Utc::now()).unwrap();
    assert!(second.runnable);
    let done = engine.run_case(id).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    let who: Vec<(String, u32)> = done
        .approval
        .unwrap()
        .approvals
        .into_iter()
        .map(|a| (a.by, a.uid))
        .collect();
    assert_eq!(
        who,
        [("alice".to_string(), 1000), ("bob".to_string(), 1001)]
    );
}

#[tokio::test]
async fn only_listed_approvers_approve_and_a_denial_is_final() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    signal(engine.store(), "web", "key_exposed", None);
    let gov = Governor::new(
        engine.clone(),
        two_person_policy("[owners.\"team@example.test\"]\napprovers = [\"alice\", \"bob\"]\n"),
    );
    let (plans, _) = gov.plan(None).unwrap();
    let id = gov
        .apply(&plans, "policy", POLICY_ACTOR, false)
        .unwrap()
        .waiting[0];
    let e = gov
        .approve(id, &person("mallory", 1002), Utc::now())
        .unwrap_err();
    assert!(e.to_string().contains("not an approver"), "{e}");
    gov.approve(id, &person("alice", 1000), Utc::now()).unwrap();
    let denied = gov
        .deny(id, &person("bob", 1001), "change freeze", Utc::now())
        .unwrap();
    assert_eq!(denied.state, CaseState::Denied);
    let e = gov
        .approve(id, &person("bob", 1001), Utc::now())
        .unwrap_err();
    assert!(e.to_string().contains("denied by bob"), "{e}");
    // The engine does not run it either, and respond does not decide its signal again.
    let c = engine.run_case(id).await.unwrap();
    assert_eq!(c.state, CaseState::Denied);
    assert!(c.journal.is_empty());
    assert!(gov.plan(None).unwrap().0.is_empty());
}

#[tokio::test]
async fn a_waiting_case_near_its_deadline_is_escalated_once() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    signal(engine.store(), "web", "key_exposed", None);
    let gov = Governor::new(
        engine.clone(),
        two_person_policy("[approvals]\nescalate_before_deadline = \"6h\"\n"),
    );
    let (plans, _) = gov.plan(None).unwrap();
    let id = gov
        .apply(&plans, "policy", POLICY_ACTOR, false)
        .unwrap()
        .waiting[0];
    let deadline = engine
        .store()
        .get_case(id)
        .unwrap()
        .unwrap()
        .deadline
        .unwrap();
    // Well before the margin: nothing.
    assert!(
        gov.check_deadlines(deadline - Duration::hours(7))
            .unwrap()
            .is_empty()
    );
    // Inside it: escalated, once.
    assert_eq!(
        gov.check_deadlines(deadline - Duration::hours(5)).unwrap(),
        [id]
    );
    assert!(
        gov.check_deadlines(deadline - Duration::hours(4))
            .unwrap()
            .is_empty()
    );
    let c = engine.store().get_case(id).unwrap().unwrap();
    assert!(c.approval.unwrap().reescalated_at.is_some());
    assert_eq!(
        c.state,
        CaseState::AwaitingApproval,
        "escalation does not act"
    );
}

#[tokio::test]
async fn every_unfinished_case_past_three_quarters_of_its_deadline_is_escalated_once() {
    let f = fixture("");
    let engine = f.engine();
    // The default margin (6 h) is shorter than a quarter of a 5-day deadline: three
    // quarters of the time decide.
    let policy = Policy::parse(
        std::path::Path::new("policy.toml"),
        "[[rule]]\nname = \"weak\"\nchecks = [\"key_exposed\"]\nmin_confidence = \"high\"\naction = \"revoke_reissue\"\napproval = \"owner\"\ndeadline = \"4d\"\ntrust = \"private\"\n\n[[rule]]\nname = \"rest\"\naction = \"escalate\"\n",
    )
    .unwrap();
    let gov = Governor::new(engine.clone(), policy);
    let states = [
        CaseState::AwaitingApproval,
        CaseState::Running,
        CaseState::Failed,
        CaseState::RevocationNeeded,
        CaseState::Unconfirmed,
        CaseState::Done,
        CaseState::Denied,
    ];
    let mut ids = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let name = format!("web{i}");
        f.register(&engine, &name, None).await;
        signal(engine.store(), &name, "key_exposed", None);
        let (plans, _) = gov.plan(Some(std::slice::from_ref(&name))).unwrap();
        let id = gov
            .apply(&plans, "policy", POLICY_ACTOR, false)
            .unwrap()
            .waiting[0];
        let mut case = engine.store().get_case(id).unwrap().unwrap();
        case.state = *state;
        if *state == CaseState::Running {
            case.retry_at = Some(Utc::now() + Duration::minutes(10));
        }
        if *state == CaseState::Failed {
            case.error = Some("the CA refused".into());
        }
        engine.store().put_case(&case).unwrap();
        ids.push((id, *state));
    }
    let deadline = engine
        .store()
        .get_case(ids[0].0)
        .unwrap()
        .unwrap()
        .deadline
        .unwrap();
    let created = engine
        .store()
        .get_case(ids[0].0)
        .unwrap()
        .unwrap()
        .created_at;
    // Two thirds of the way: nothing yet.
    let two_thirds = created + (deadline - created) * 2 / 3;
    assert!(gov.check_deadlines(two_thirds).unwrap().is_empty());
    // Past three quarters (a day before a 4-day deadline, well outside the 6 h margin).
    let past = created + (deadline - created) * 3 / 4 + Duration::minutes(1);
    let escalated = gov.check_deadlines(past).unwrap();
    let expected: Vec<u64> = ids
        .iter()
        .filter(|(_, s)| !matches!(s, CaseState::Done | CaseState::Denied))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(escalated, expected);
    // Once.
    assert!(
        gov.check_deadlines(past + Duration::hours(1))
            .unwrap()
            .is_empty()
    );
    let records = audit::records(engine.store()).unwrap();
    for (id, state) in &ids {
        let n = records
            .iter()
            .filter(|r| r.kind == "escalation" && r.case == Some(*id))
            .count();
        let want = usize::from(!matches!(state, CaseState::Done | CaseState::Denied));
        assert_eq!(n, want, "case {id} ({state})");
        let c = engine.store().get_case(*id).unwrap().unwrap();
        assert_eq!(c.state, *state, "escalation changes no state");
    }
}

#[tokio::test]
async fn an_engine_save_of_an_older_copy_keeps_the_escalation_mark() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    signal(engine.store(), "web", "key_exposed", None);
    let gov = Governor::new(engine.clone(), two_person_policy(""));
    let (plans, _) = gov.plan(None).unwrap();
    let id = gov
        .apply(&plans, "policy", POLICY_ACTOR, false)
        .unwrap()
        .waiting[0];
    // The engine holds a copy of the running case (taken before the escalation) ...
    let mut case = engine.store().get_case(id).unwrap().unwrap();
    case.state = CaseState::Running;
    engine.store().put_case(&case).unwrap();
    let mut held = engine.store().get_case(id).unwrap().unwrap();
    let deadline = held.deadline.unwrap();
    assert_eq!(
        gov.check_deadlines(deadline - Duration::hours(1)).unwrap(),
        [id]
    );
    // ... and journals a step with it: the mark stays, so the next pass is quiet.
    engine.save(&mut held).unwrap();
    assert!(
        engine
            .store()
            .get_case(id)
            .unwrap()
            .unwrap()
            .reescalated_at
            .is_some()
    );
    assert!(
        gov.check_deadlines(deadline - Duration::minutes(59))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_blocked_decision_near_its_deadline_is_escalated_again_once() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f.register(&engine, "web", None).await;
    // The entry loses its issuer: the revocation cannot run.
    let mut rec = engine.store().get_cert("web").unwrap().unwrap();
    rec.entry.issuer = None;
    engine.store().put_cert(&rec).unwrap();
    drop(entry);
    let s = signal(engine.store(), "web", "key_exposed", None);
    let gov = Governor::new(engine.clone(), Policy::builtin());
    let (plans, _) = gov.plan(None).unwrap();
    assert!(plans[0].blocked.is_some(), "{plans:?}");
    gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    let deadline = s.detected_at + Duration::hours(24);
    let escalations = |store: &dyn crate::store::Store| {
        audit::records(store)
            .unwrap()
            .iter()
            .filter(|r| r.kind == "escalation" && r.cert.as_deref() == Some("web"))
            .count()
    };
    gov.check_deadlines(deadline - Duration::hours(7)).unwrap();
    assert_eq!(escalations(engine.store()), 0);
    gov.check_deadlines(deadline - Duration::hours(5)).unwrap();
    gov.check_deadlines(deadline - Duration::hours(4)).unwrap();
    assert_eq!(escalations(engine.store()), 1);
    let stored = engine.store().get_signal(&s.dedup_key).unwrap().unwrap();
    let h = stored.handled.unwrap();
    assert_eq!(h.deadline, Some(deadline));
    assert!(h.reescalated_at.is_some());
}

#[tokio::test]
async fn a_report_about_a_waiting_case_is_answered_on_its_own_clock() {
    let f = fixture("");
    let engine = f.engine();
    let mut policy = Policy::builtin();
    policy.limits.max_revocations = 0;
    f.register(&engine, "web", None).await;
    let weak = signal(engine.store(), "web", "rsa_modulus_small", None);
    let gov = Governor::new(engine.clone(), policy);
    let (plans, _) = gov.plan(None).unwrap();
    let id = gov
        .apply(&plans, "policy", POLICY_ACTOR, false)
        .unwrap()
        .waiting[0];
    let held = engine.store().get_case(id).unwrap().unwrap();
    assert_eq!(held.reason.map(|r| r.name()), Some("superseded"));
    // The key is then reported compromised.
    let report = signal(engine.store(), "web", "key_exposed", None);
    let case = gov
        .fold_into_waiting(id, "alice (uid 1000)", false)
        .unwrap();
    assert_eq!(
        case.state,
        CaseState::Running,
        "a report is not held by the breaker"
    );
    assert_eq!(case.reason.map(|r| r.name()), Some("keyCompromise"));
    assert_eq!(
        case.deadline,
        Some(report.detected_at + Duration::hours(24))
    );
    assert!(case.trigger.signals.contains(&weak.dedup_key));
    assert!(case.trigger.signals.contains(&report.dedup_key));
    let done = engine.run_case(id).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    assert!(done.revoked_old());
}

#[tokio::test]
async fn a_signal_about_a_replaced_certificate_is_resolved_not_acted_on() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    // A first response replaces the certificate; its bundles are now in the history.
    let case = engine
        .open_case(
            "web",
            crate::respond::SequenceKind::Reissue,
            false,
            None,
            Trigger {
                source: "manual".into(),
                by: "test".into(),
                why: "test".into(),
                signals: Vec::new(),
            },
        )
        .unwrap();
    let done = engine.run_case(case.id).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    let bundles = engine.store().bundles("web").unwrap();
    let old = bundles
        .iter()
        .find(|b| Some(&b.id) == done.old_bundle.as_ref())
        .unwrap();
    // A signal about the old certificate arrives late.
    let info = vocab::check_info("fermat").unwrap();
    let finding = Finding {
        check: info.check,
        confidence: Confidence::Confirmed,
        message: "late".into(),
        revocation_reason: None,
        deadline_hours: None,
        evidence: json!({}),
    };
    let late = Signal::from_finding(
        "web",
        "weak",
        &finding,
        Some(&old.fingerprints.cert_sha256),
        "test",
        Utc::now(),
    );
    engine.store().put_signal(&late).unwrap();
    let gov = Governor::new(engine.clone(), Policy::builtin());
    let (plans, _) = gov.plan(None).unwrap();
    assert!(plans.is_empty(), "{plans:#?}");
    let s = engine.store().get_signal(&late.dedup_key).unwrap().unwrap();
    assert!(!s.is_open(Utc::now()), "the stale signal is resolved");
}

#[tokio::test]
async fn an_action_that_could_not_run_is_tried_again_once_fixed() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    let store = engine.store();
    let mut rec = store.get_cert("web").unwrap().unwrap();
    let issuer = rec.entry.issuer.take();
    store.put_cert(&rec).unwrap();
    signal(store, "web", "key_exposed", None);
    let gov = Governor::new(engine.clone(), Policy::builtin());
    let (plans, _) = gov.plan(None).unwrap();
    assert!(
        plans[0]
            .blocked
            .as_deref()
            .unwrap()
            .contains("names no `issuer`")
    );
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    assert_eq!(applied.escalated, ["web"]);
    // Still blocked: not escalated again on every pass.
    assert!(gov.plan(None).unwrap().0.is_empty());
    // Fixed: decided again, and acted on.
    rec.entry.issuer = issuer;
    store.put_cert(&rec).unwrap();
    let (plans, _) = gov.plan(None).unwrap();
    assert_eq!(plans.len(), 1);
    assert!(plans[0].blocked.is_none());
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    assert_eq!(applied.run.len(), 1);
}

#[tokio::test]
async fn a_case_answers_only_the_signals_whose_rule_it_carries_out() {
    let f = fixture("");
    let engine = f.engine();
    f.register(&engine, "web", None).await;
    // In one pass: a compromised key (revoke_reissue) and a certificate for web's names that
    // nobody ordered (escalate: a person decides, whatever happens to the key).
    let key = signal(engine.store(), "web", "key_exposed", None);
    let ct = signal(engine.store(), "web", "ct_unauthorized_issuance", None);
    let gov = Governor::new(engine.clone(), Policy::builtin());
    let (plans, _) = gov.plan(None).unwrap();
    assert_eq!(plans.len(), 1, "{plans:#?}");
    assert_eq!(plans[0].decision.action, Action::RevokeReissue);
    assert_eq!(
        plans[0].decision.signals,
        std::slice::from_ref(&key.dedup_key)
    );
    let applied = gov.apply(&plans, "policy", POLICY_ACTOR, false).unwrap();
    let done = engine.run_case(applied.run[0]).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    assert_eq!(done.trigger.signals, std::slice::from_ref(&key.dedup_key));
    // The CT signal is escalated on its own and stays open; the key's is resolved.
    let ct = engine.store().get_signal(&ct.dedup_key).unwrap().unwrap();
    assert!(ct.is_open(Utc::now()), "{ct:#?}");
    assert_eq!(
        ct.handled.as_ref().map(|h| h.action.as_str()),
        Some("escalate")
    );
    let key = engine.store().get_signal(&key.dedup_key).unwrap().unwrap();
    assert!(!key.is_open(Utc::now()), "{key:#?}");
}

#[test]
fn a_concurrent_approval_and_denial_end_as_one_of_them_came_first() {
    let f = fixture("");
    let engine = f.engine();
    let gov = Arc::new(Governor::new(engine.clone(), two_person_policy("")));
    let store = engine.store();
    for round in 0..100 {
        let mut case = crate::respond::Case::new(
            &format!("svc{round}"),
            crate::respond::SequenceKind::Reissue,
            false,
            None,
            Trigger {
                source: "test".into(),
                by: "test".into(),
                why: "race".into(),
                signals: Vec::new(),
            },
            Utc::now(),
        );
        case.id = store.next_case_id().unwrap();
        case.state = CaseState::AwaitingApproval;
        case.approval = Some(ApprovalState::waiting(
            Approval::Owner,
            1,
            "the owner approves".into(),
            false,
            Vec::new(),
        ));
        store.put_case(&case).unwrap();
        let id = case.id;
        let start = Arc::new(std::sync::Barrier::new(2));
        let (a, d) = std::thread::scope(|s| {
            let approving = s.spawn(|| {
                start.wait();
                gov.approve(id, &person("alice", 1000), Utc::now())
            });
            let denying = s.spawn(|| {
                start.wait();
                gov.deny(id, &person("bob", 1001), "change freeze", Utc::now())
            });
            (approving.join().unwrap(), denying.join().unwrap())
        });
        let stored = store.get_case(id).unwrap().unwrap();
        let approval = stored.approval.clone().unwrap();
        match (a.is_ok(), d.is_ok()) {
            (true, false) => {
                assert_eq!(stored.state, CaseState::Running, "round {round}");
                assert!(approval.denied.is_none(), "round {round}: {stored:?}");
                let e = d.unwrap_err().to_string();
                assert!(e.contains("not waiting for approval"), "round {round}: {e}");
            }
            (false, true) => {
                assert_eq!(stored.state, CaseState::Denied, "round {round}");
                assert!(approval.approvals.is_empty(), "round {round}: {stored:?}");
                let e = a.unwrap_err().to_string();
                assert!(e.contains("was denied"), "round {round}: {e}");
            }
            other => panic!("round {round}: approve and deny both {other:?}: {stored:?}"),
        }
    }
}

#[test]
fn the_breaker_is_saved_only_over_what_it_was_read_from() {
    let store = crate::store::MemoryStore::new();
    let mut first = BreakerState::load(&store).unwrap();
    let mut second = BreakerState::load(&store).unwrap();
    first.record("team", "a", 1, Utc::now());
    first.save(&store).unwrap();
    second.record("team", "b", 2, Utc::now());
    let e = second.save(&store).unwrap_err().to_string();
    assert!(e.contains("changed by another writer"), "{e}");
    // Read again, it counts both.
    let mut again = BreakerState::load(&store).unwrap();
    again.record("team", "b", 2, Utc::now());
    again.save(&store).unwrap();
    assert_eq!(BreakerState::load(&store).unwrap().admitted.len(), 2);
}
