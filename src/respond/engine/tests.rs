//! Engine tests on the in-memory store with a real internal CA and real files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use certresponder_inventory::{CertId, CertKind, ManagedCert, Paths};
use certresponder_issuers::{
    CertStatus as IssuerStatus, IssueRequest, IssuedChain, Issuer, IssuerError, RenewalWindow,
    RevokeRequest,
};

use super::*;
use crate::records::case::StepOutcome;
use crate::store::{CertRecord, MemoryStore};

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) cfg: Config,
}

pub(crate) fn fixture(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "state_dir = \"state\"\ninventory_dir = \"inventory\"\n[respond]\nverify_timeout_secs = 2\nretry_base_ms = 10\nconfirm_timeout_secs = 2\n{extra}\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n"
    );
    let cfg = Config::parse(&dir.path().join("certresponder.toml"), &text).unwrap();
    Fixture {
        dir,
        store: Arc::new(MemoryStore::new()),
        cfg,
    }
}

impl Fixture {
    pub(crate) fn engine(&self) -> Arc<Engine> {
        Arc::new(Engine::new(self.store.clone(), self.cfg.clone()).unwrap())
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Registers `name` with a first certificate issued by the internal CA and written to
    /// its files.
    pub(crate) async fn register(
        &self,
        engine: &Engine,
        name: &str,
        reload: Option<&str>,
    ) -> ManagedCert {
        let files = self.path(name);
        std::fs::create_dir_all(&files).unwrap();
        let entry = ManagedCert {
            issuer: Some("internal".into()),
            key_profile: Some(certresponder_inventory::KeyProfile::EcdsaP256),
            reload: reload.map(str::to_string),
            ..ManagedCert::new(
                CertId::new(name).unwrap(),
                "team@example.test",
                Paths {
                    key: Some(files.join("key.pem")),
                    chain: Some(files.join("chain.pem")),
                    fullchain: Some(files.join("fullchain.pem")),
                    ..Paths::cert_only(files.join("cert.pem"))
                },
                self.path("inventory/test.toml"),
            )
        };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let host = format!("{name}.example.test");
        let mut params = rcgen::CertificateParams::new(vec![host.clone()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host.clone());
        let csr = params.serialize_request(&key).unwrap();
        let chain = engine.issuers["internal"]
            .issue(&IssueRequest {
                csr_der: csr.der().to_vec(),
                identifiers: vec![certresponder_issuers::Identifier::Dns(host)],
                kind: CertKind::TlsServer,
                profile: None,
                replaces: None,
                request_id: None,
            })
            .await
            .unwrap();
        std::fs::write(&entry.paths.cert, &chain.leaf_pem).unwrap();
        std::fs::write(entry.paths.key.as_ref().unwrap(), key.serialize_pem()).unwrap();
        std::fs::write(entry.paths.chain.as_ref().unwrap(), &chain.chain_pem).unwrap();
        std::fs::write(
            entry.paths.fullchain.as_ref().unwrap(),
            chain.fullchain_pem(),
        )
        .unwrap();
        self.store
            .put_cert(&CertRecord {
                entry: entry.clone(),
                status: CertStatus::Active,
                registered_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .unwrap();
        entry
    }
}

fn trigger() -> Trigger {
    Trigger {
        source: "manual".into(),
        by: "test".into(),
        why: "test".into(),
        signals: Vec::new(),
    }
}

fn files(entry: &ManagedCert) -> Vec<Vec<u8>> {
    [
        Some(&entry.paths.cert),
        entry.paths.key.as_ref(),
        entry.paths.chain.as_ref(),
        entry.paths.fullchain.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::read(p).unwrap())
    .collect()
}

fn leaf_der(path: &Path) -> Vec<u8> {
    certresponder_inventory::inspect::read_certificates(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn revoke_kind_revokes_and_leaves_the_files() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f.register(&engine, "web", None).await;
    let before = files(&entry);
    let old_leaf = leaf_der(&entry.paths.cert);
    let case = engine
        .open_case(
            "web",
            SequenceKind::Revoke,
            false,
            Some(RevocationReason::CessationOfOperation),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
    let steps: Vec<Step> = case.journal.iter().map(|r| r.step).collect();
    assert_eq!(
        steps,
        [Step::Snapshot, Step::Revoke, Step::Confirm, Step::Close]
    );
    assert_eq!(files(&entry), before, "a plain revoke writes no file");
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert!(
        matches!(
            status,
            IssuerStatus::Revoked {
                reason: Some(RevocationReason::CessationOfOperation),
                ..
            }
        ),
        "{status:?}"
    );
    let history = f.store.bundles("web").unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].is_revoked());
}

#[tokio::test]
async fn failed_reload_rolls_back_and_keeps_the_old_certificate_valid() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f
        .register(
            &engine,
            "web",
            Some("echo 'nginx: [emerg] cannot load certificate' >&2; exit 1"),
        )
        .await;
    let before = files(&entry);
    let old_leaf = leaf_der(&entry.paths.cert);
    let case = engine
        .open_case(
            "web",
            SequenceKind::RevokeReissue,
            false,
            Some(RevocationReason::KeyCompromise),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Failed);
    assert!(case.rolled_back);
    let error = case.error.clone().unwrap();
    assert!(error.contains("cannot load certificate"), "{error}");
    let rollback = case.journal.last().unwrap();
    assert_eq!(
        (rollback.step, rollback.outcome),
        (Step::Rollback, StepOutcome::Ok),
        "the restore itself does not need the broken reload to pass: {}",
        rollback.detail
    );
    assert!(!case.revoked_old());
    assert_eq!(
        files(&entry),
        before,
        "the old bundle is restored byte for byte"
    );
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert_eq!(
        status,
        IssuerStatus::Good,
        "the old certificate is not revoked"
    );
    let history = f.store.bundles("web").unwrap();
    let current = Bundle::current_of(&history).unwrap();
    assert_eq!(Some(&current.id), case.old_bundle.as_ref());
    assert_eq!(history.len(), 2, "the failed bundle stays in the history");
}

/// The internal CA behind an issuer that fails its first `issue_failures` issuances and its
/// first `revoke_failures` revocations with the errors given, then passes them on: how a CA's
/// rate limit, outage or refusal looks to the engine.
struct Faulty {
    inner: Arc<dyn Issuer>,
    issue_failures: u32,
    issue_error: fn() -> IssuerError,
    issue_calls: AtomicU32,
    revoke_failures: u32,
    revoke_error: fn() -> IssuerError,
    revoke_calls: AtomicU32,
}

#[async_trait]
impl Issuer for Faulty {
    fn id(&self) -> &str {
        self.inner.id()
    }
    async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
        if self.issue_calls.fetch_add(1, Ordering::SeqCst) < self.issue_failures {
            return Err((self.issue_error)());
        }
        self.inner.issue(req).await
    }
    async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError> {
        if self.revoke_calls.fetch_add(1, Ordering::SeqCst) < self.revoke_failures {
            return Err((self.revoke_error)());
        }
        self.inner.revoke(req).await
    }
    async fn status(&self, der: &[u8]) -> Result<IssuerStatus, IssuerError> {
        self.inner.status(der).await
    }
    async fn renewal_info(&self, der: &[u8]) -> Result<Option<RenewalWindow>, IssuerError> {
        self.inner.renewal_info(der).await
    }
}

/// An engine on `f` whose `internal` issuer fails as `issue` and `revoke` say (how many
/// calls, with what error).
fn faulty_engine(
    f: &Fixture,
    issue: (u32, fn() -> IssuerError),
    revoke: (u32, fn() -> IssuerError),
) -> (Arc<Engine>, Arc<Faulty>) {
    let real = f.engine();
    let faulty = Arc::new(Faulty {
        inner: real.issuers["internal"].clone(),
        issue_failures: issue.0,
        issue_error: issue.1,
        issue_calls: AtomicU32::new(0),
        revoke_failures: revoke.0,
        revoke_error: revoke.1,
        revoke_calls: AtomicU32::new(0),
    });
    let mut issuers: BTreeMap<String, Arc<dyn Issuer>> = BTreeMap::new();
    issuers.insert("internal".into(), faulty.clone());
    let engine = Engine::with_issuers(f.store.clone(), f.cfg.clone(), issuers);
    (Arc::new(engine), faulty)
}

fn rate_limited() -> IssuerError {
    IssuerError::RateLimited {
        retry_after: Some(Duration::from_millis(20)),
        detail: "too many orders".into(),
    }
}

fn not_allowed() -> IssuerError {
    IssuerError::NotAllowed("the CA does not issue for example.test".into())
}

/// Issuance fails `failures` times, with a rate limit or (`permanent`) a refusal.
fn flaky_engine(f: &Fixture, failures: u32, permanent: bool) -> (Arc<Engine>, Arc<Faulty>) {
    let error = if permanent { not_allowed } else { rate_limited };
    faulty_engine(f, (failures, error), (0, outage))
}

#[tokio::test]
async fn retryable_issuer_errors_back_off_and_succeed() {
    let f = fixture("");
    let (engine, flaky) = flaky_engine(&f, 2, false);
    f.register(&f.engine(), "web", None).await;
    let case = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
    // Two refusals, then the case's certificate.
    assert_eq!(flaky.issue_calls.load(Ordering::SeqCst), 3);
    let issue = case.journal.iter().find(|r| r.step == Step::Issue).unwrap();
    assert!(
        issue.detail.contains("after 3 attempts"),
        "{}",
        issue.detail
    );
    assert_eq!(case.issued_count, 1);
    // The new certificate is in the CT authorization ledger, tied to the case.
    let new_id = case.new_bundle.clone().unwrap();
    let new = f
        .store
        .bundles("web")
        .unwrap()
        .into_iter()
        .find(|b| b.id == new_id)
        .unwrap();
    let ledger = f
        .store
        .get_ledger(&new.fingerprints.tbs_sha256)
        .unwrap()
        .unwrap();
    assert_eq!((ledger.case, ledger.cert.as_str()), (Some(case.id), "web"));
}

#[tokio::test]
async fn permanent_issuer_error_fails_and_changes_nothing() {
    let f = fixture("");
    let entry = f.register(&f.engine(), "web", None).await;
    let before = files(&entry);
    let (engine, flaky) = flaky_engine(&f, 10, true);
    let case = engine
        .open_case(
            "web",
            SequenceKind::RevokeReissue,
            false,
            Some(RevocationReason::Superseded),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Failed);
    assert!(
        !case.rolled_back,
        "nothing was deployed, so nothing to roll back"
    );
    assert_eq!(
        flaky.issue_calls.load(Ordering::SeqCst),
        1,
        "no retry of a refusal"
    );
    let error = case.error.unwrap();
    assert!(
        error.contains("permanent") && error.contains("unrevoked"),
        "{error}"
    );
    assert_eq!(files(&entry), before);
}

#[tokio::test]
async fn one_running_case_per_certificate_and_concurrent_cases_finish() {
    let f = fixture("concurrency = 2\n");
    let engine = f.engine();
    let mut ids = Vec::new();
    // The engines of one process share the reload lanes: a command of this test's own.
    let reload = format!("true {}", f.path("reload").display());
    for name in ["a", "b", "c", "d"] {
        f.register(&engine, name, Some(&reload)).await;
        ids.push(
            engine
                .open_case(name, SequenceKind::Reissue, false, None, trigger())
                .unwrap()
                .id,
        );
    }
    let busy = engine
        .open_case("a", SequenceKind::Reissue, false, None, trigger())
        .unwrap_err();
    assert!(matches!(busy, RespondError::Busy { case, .. } if case == ids[0]));
    let results = engine.run_cases(&ids).await;
    for r in results {
        let case = r.unwrap();
        assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
        assert_ne!(case.old_bundle, case.new_bundle);
    }
    assert!(engine.unfinished().unwrap().is_empty());
    assert!(
        engine.reloader.runs(&reload) <= 4,
        "reloads are never run more often than asked"
    );
}

#[tokio::test]
async fn entries_that_cannot_act_are_refused_up_front() {
    let f = fixture("");
    let engine = f.engine();
    let mut entry = f.register(&engine, "web", None).await;
    entry.paths.key = None;
    f.store
        .put_cert(&CertRecord {
            entry,
            status: CertStatus::Active,
            registered_at: Utc::now(),
            updated_at: Utc::now(),
        })
        .unwrap();
    let e = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap_err()
        .to_string();
    assert!(e.contains("names no `key`"), "{e}");
    assert!(
        engine
            .open_case("web", SequenceKind::Revoke, false, None, trigger())
            .is_ok(),
        "a plain revoke needs no key location"
    );
    let e = engine
        .open_case("nope", SequenceKind::Reissue, false, None, trigger())
        .unwrap_err();
    assert!(matches!(e, RespondError::UnknownCert(_)));
}

#[tokio::test]
async fn a_case_waits_for_its_certificate_lock_and_others_do_not() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f.register(&engine, "web", Some("true")).await;
    f.register(&engine, "api", Some("true")).await;
    let before = files(&entry);
    let web = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap()
        .id;
    let api = engine
        .open_case("api", SequenceKind::Reissue, false, None, trigger())
        .unwrap()
        .id;

    // What a rollback by hand holds while it restores.
    let held = engine.hold_cert("web").await;
    let waiting = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.run_case(web).await })
    };
    // Another certificate's case is not held up.
    let other = engine.run_case(api).await.unwrap();
    assert_eq!(other.state, CaseState::Done, "{:?}", other.error);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored = f.store.get_case(web).unwrap().unwrap();
    assert!(
        stored.journal.is_empty(),
        "the case began while its certificate was held: {:?}",
        stored.journal
    );
    assert_eq!(files(&entry), before);
    assert!(!waiting.is_finished());

    drop(held);
    let case = waiting.await.unwrap().unwrap();
    assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
    assert_ne!(files(&entry), before);
}

#[tokio::test]
async fn a_rollback_checked_before_a_case_opened_is_refused_and_restores_nothing() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f.register(&engine, "web", Some("true")).await;
    let first = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    let first = engine.run_case(first.id).await.unwrap();
    assert_eq!(first.state, CaseState::Done, "{:?}", first.error);
    let (checked, target) =
        crate::respond::rollback::rollback_checked(&engine, "web", None, false).unwrap();
    assert_eq!(Some(&target.id), first.old_bundle.as_ref());

    // Between the checks and the restore, a job opens a case on the certificate.
    let opened = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    let before = files(&entry);
    let err = crate::respond::rollback::rollback(&engine, &checked, &target, "admin")
        .await
        .unwrap_err();
    let err = format!("{err:?}");
    assert!(
        err.contains(&format!("has case {} running", opened.id)),
        "{err}"
    );
    assert_eq!(files(&entry), before, "the rollback wrote the files");

    // While a case holds the certificate (running its steps), a rollback is refused at
    // once rather than waiting and restoring over what the case deploys.
    let held = engine.hold_cert("web").await;
    let err = crate::respond::rollback::rollback(&engine, &checked, &target, "admin")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("right now"), "{err:?}");
    drop(held);

    // Once that case is done, the same rollback goes ahead.
    let done = engine.run_case(opened.id).await.unwrap();
    assert_eq!(done.state, CaseState::Done, "{:?}", done.error);
    let rolled = crate::respond::rollback::rollback(&engine, &checked, &target, "admin")
        .await
        .unwrap();
    assert!(rolled.ok, "{}", rolled.detail);
    let current = f
        .store
        .bundles("web")
        .unwrap()
        .into_iter()
        .find(|b| b.state == certresponder_inventory::BundleState::Current)
        .unwrap();
    assert_eq!(current.id, target.id);
}

#[tokio::test]
async fn a_failed_reload_does_not_restore_a_bundle_its_ca_revoked() {
    let f = fixture("");
    let engine = f.engine();
    let entry = f
        .register(
            &engine,
            "web",
            Some("echo 'nginx: [emerg] cannot load certificate' >&2; exit 1"),
        )
        .await;
    let before = files(&entry);
    // The deployed certificate is in the history, and its CA has revoked it (a CA-side
    // check marked it so).
    let now = Utc::now();
    let deployed = Bundle::read_current(&entry, now).unwrap();
    f.store.append_bundle(&deployed).unwrap();
    assert_eq!(
        f.store
            .mark_revoked(&deployed.fingerprints.cert_sha256, now)
            .unwrap(),
        1
    );
    let case = engine
        .open_case("web", SequenceKind::Reissue, false, None, trigger())
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Failed, "{:?}", case.error);
    assert!(
        !case.rolled_back,
        "a revoked bundle was restored: {case:#?}"
    );
    assert_ne!(files(&entry), before, "the revoked files are back");
    let error = case.error.clone().unwrap_or_default();
    assert!(
        error.contains("is revoked, so it was not restored"),
        "{error}"
    );
}

/// Revocation fails `failures` times with `error`.
fn stubborn_engine(
    f: &Fixture,
    failures: u32,
    error: fn() -> IssuerError,
) -> (Arc<Engine>, Arc<Faulty>) {
    faulty_engine(f, (0, rate_limited), (failures, error))
}

fn outage() -> IssuerError {
    IssuerError::Server("503 Service Unavailable".into())
}

fn not_ours() -> IssuerError {
    IssuerError::BadRequest("the certificate was not issued by `internal`".into())
}

#[tokio::test]
async fn a_revocation_failing_for_a_passing_reason_is_tried_again_later() {
    let f = fixture("issue_attempts = 1");
    let (engine, stubborn) = stubborn_engine(&f, 1, outage);
    let entry = f.register(&f.engine(), "web", None).await;
    let old_leaf = leaf_der(&entry.paths.cert);
    let case = engine
        .open_case(
            "web",
            SequenceKind::RevokeReissue,
            false,
            Some(RevocationReason::KeyCompromise),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    // Replaced, the revocation waiting to be tried again: still running, at Revoke.
    assert_eq!(case.state, CaseState::Running, "{:?}", case.error);
    assert_eq!(case.next, Some(Step::Revoke));
    let at = case.retry_at.expect("a time to try again");
    assert!(at > Utc::now() - chrono::TimeDelta::seconds(1));
    let last = case.journal.last().unwrap();
    assert_eq!(
        (last.step, last.outcome),
        (Step::Revoke, StepOutcome::Failed)
    );
    assert!(last.detail.contains("tried again at"), "{}", last.detail);
    assert_ne!(
        leaf_der(&entry.paths.cert),
        old_leaf,
        "the new one is deployed"
    );
    // The old certificate is still good, so nothing may close its case.
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert_eq!(status, IssuerStatus::Good);
    // Once its time has come, the revocation runs again and the case ends.
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
    assert_eq!(stubborn.revoke_calls.load(Ordering::SeqCst), 2);
    assert!(case.retry_at.is_none());
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert!(matches!(status, IssuerStatus::Revoked { .. }), "{status:?}");
}

#[tokio::test]
async fn a_revocation_the_issuer_refuses_leaves_the_case_revocation_needed() {
    let f = fixture("issue_attempts = 1");
    let (engine, stubborn) = stubborn_engine(&f, 1, not_ours);
    let entry = f.register(&f.engine(), "web", None).await;
    let old_leaf = leaf_der(&entry.paths.cert);
    let case = engine
        .open_case(
            "web",
            SequenceKind::RevokeReissue,
            false,
            Some(RevocationReason::KeyCompromise),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::RevocationNeeded, "{case:#?}");
    let error = case.error.clone().unwrap();
    assert!(
        error.contains("NOT revoked") && error.contains("cases revoke-old"),
        "{error}"
    );
    assert_eq!(
        stubborn.revoke_calls.load(Ordering::SeqCst),
        1,
        "not retried"
    );
    // Not closed by any pass while the old certificate is valid.
    assert!(
        engine.settle_revocations(Utc::now()).unwrap().is_empty(),
        "closed while the old certificate is still valid"
    );
    // Revoked by hand through the issuer: the case confirms and closes.
    engine.prepare_retry(case.id, Some(None), "test").unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Done, "{:?}", case.error);
    let steps: Vec<Step> = case.journal.iter().map(|r| r.step).collect();
    assert_eq!(
        steps[steps.len() - 3..],
        [Step::Revoke, Step::Confirm, Step::Close]
    );
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert!(
        matches!(
            status,
            IssuerStatus::Revoked {
                reason: Some(RevocationReason::KeyCompromise),
                ..
            }
        ),
        "{status:?}"
    );
    // Asked again, it refuses: there is nothing left to revoke.
    let again = engine
        .prepare_retry(case.id, Some(None), "test")
        .unwrap_err();
    assert!(again.to_string().contains("already revoked"), "{again}");
}

#[tokio::test]
async fn a_revocation_past_its_deadline_is_not_tried_again() {
    let f = fixture("issue_attempts = 1");
    let (engine, _) = stubborn_engine(&f, 10, outage);
    f.register(&f.engine(), "web", None).await;
    let mut running = engine.running_by_cert().unwrap();
    let case = engine
        .open(
            Opening {
                id: None,
                cert: "web".into(),
                kind: SequenceKind::RevokeReissue,
                contain_first: false,
                reason: Some(RevocationReason::KeyCompromise),
                trigger: trigger(),
                decision: None,
                deadline: Some(Utc::now() - chrono::TimeDelta::seconds(1)),
                approval: None,
                issuer: None,
            },
            &mut running,
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::RevocationNeeded, "{case:#?}");
    assert!(case.retry_at.is_none());
}

#[tokio::test]
async fn contain_first_deploys_the_replacement_when_the_revocation_fails() {
    let f = fixture("issue_attempts = 1");
    let (engine, stubborn) = stubborn_engine(&f, 1, outage);
    let entry = f.register(&f.engine(), "web", None).await;
    let old_leaf = leaf_der(&entry.paths.cert);
    let case = engine
        .open_case(
            "web",
            SequenceKind::RevokeReissue,
            true,
            Some(RevocationReason::KeyCompromise),
            trigger(),
        )
        .unwrap();
    let case = engine.run_case(case.id).await.unwrap();
    assert_eq!(case.state, CaseState::Done, "{case:#?}");
    let steps: Vec<Step> = case.journal.iter().map(|r| r.step).collect();
    assert_eq!(
        steps,
        [
            Step::Snapshot,
            Step::NewKey,
            Step::Issue,
            Step::Check,
            Step::Record,
            Step::Revoke,
            Step::Deploy,
            Step::Reload,
            Step::Verify,
            Step::Revoke,
            Step::Confirm,
            Step::Close
        ]
    );
    assert_eq!(stubborn.revoke_calls.load(Ordering::SeqCst), 2);
    assert_ne!(leaf_der(&entry.paths.cert), old_leaf);
    let status = engine.issuers["internal"].status(&old_leaf).await.unwrap();
    assert!(matches!(status, IssuerStatus::Revoked { .. }), "{status:?}");
}
