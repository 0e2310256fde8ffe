//! The steps of a sequence. Each is idempotent: run again after a crash, it finds its work
//! done (the snapshot taken, the key generated, the chain issued) or does the same work again
//! with the same result (writing the same bytes, reloading, re-reading the status).

use std::net::IpAddr;

use certresponder_inventory::inspect::{self, CertInfo};
use certresponder_inventory::{Bundle, BundleState, KeyProfile, ManagedCert, SecretPem};
use certresponder_issuers::{
    CertStatus as IssuerCertStatus, Identifier, IssueRequest, Issuer, IssuerError, RevokeRequest,
    generate_key,
};
use chrono::Utc;

use super::engine::{Engine, StepResult};
use super::{deploy, verify};
use crate::records::case::{Case, IssuedPem, Issuing, LedgerEntry, Orphan, Step};
use crate::signals::Confidence;
use crate::signals::state;

fn fail(detail: impl Into<String>) -> StepResult {
    StepResult::Fail {
        detail: detail.into(),
        rollback: false,
    }
}

fn fail_restore(detail: impl Into<String>) -> StepResult {
    StepResult::Fail {
        detail: detail.into(),
        rollback: true,
    }
}

/// Whether the journaled request's CSR is for `key`.
fn same_key(m: &Issuing, key: &SecretPem) -> bool {
    let Ok(journaled) = inspect::read_csr(m.csr_pem.as_bytes()) else {
        return false;
    };
    let Ok(kp) = rcgen::KeyPair::from_pem(key.expose()) else {
        return false;
    };
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(
        rcgen::PublicKeyData::subject_public_key_info(&kp),
    )) == journaled.spki_sha256
}

/// A request id for an issue of case `case`: the case and 64 random bits, so that no two
/// requests to one CA share it, from this installation or another.
fn request_id(case: u64) -> String {
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!("certresponder-case-{case}-{}", hex::encode(bytes))
}

/// The issuer DN of a bundle's leaf, for messages; `?` when it cannot be read.
pub(crate) fn old_issuer_name(b: &Bundle) -> String {
    b.leaf_der()
        .ok()
        .and_then(|der| inspect::inspect_certificate_der(&der).ok())
        .map_or_else(|| "?".to_string(), |c| c.issuer)
}

/// "`ca` reports it revoked at T (reason)".
fn revoked_words(
    issuer: &str,
    at: chrono::DateTime<Utc>,
    reason: Option<certresponder_issuers::RevocationReason>,
) -> String {
    format!(
        "`{issuer}` reports it revoked at {}{}",
        at.format("%Y-%m-%d %H:%M:%S UTC"),
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    )
}

/// The first 16 hex digits of a fingerprint, as bundle ids and messages show them.
fn short(fp: &str) -> &str {
    &fp[..fp.len().min(16)]
}

impl Engine {
    pub(crate) async fn run_step(
        &self,
        case: &mut Case,
        entry: &ManagedCert,
        step: Step,
    ) -> StepResult {
        match step {
            Step::Snapshot => self.snapshot(case, entry),
            Step::NewKey => self.new_key(case, entry).await,
            Step::Issue => self.issue(case, entry).await,
            Step::Check => self.check(case),
            Step::Record => self.record(case),
            Step::Deploy => self.deploy_new(case, entry).await,
            Step::Reload => self.reload_step(case, entry).await,
            Step::Verify => self.verify_step(case, entry).await,
            Step::Revoke => self.revoke(case, entry).await,
            Step::Confirm => self.confirm(case, entry).await,
            Step::Close => self.close(case),
            Step::Rollback => self.rollback_step(case, entry).await,
        }
    }

    /// The entry's own issuer: the CA of the certificate deployed now, which revokes it.
    fn issuer_of(&self, entry: &ManagedCert) -> Result<&dyn Issuer, String> {
        let id = entry
            .issuer
            .as_deref()
            .ok_or_else(|| format!("the entry ({}) names no issuer", entry.source.display()))?;
        self.issuer_by_id(id)
    }

    /// The issuer a case orders its new certificate from: its replacement issuer, if it has
    /// one, else the entry's own.
    fn ordering_issuer(&self, case: &Case, entry: &ManagedCert) -> Result<&dyn Issuer, String> {
        match &case.issuer {
            Some(id) => self.issuer_by_id(id),
            None => self.issuer_of(entry),
        }
    }

    /// The issuer a case revokes (and confirms) the old certificate through: the one named
    /// by `cases revoke-old --issuer`, else the entry's own.
    fn revoking_issuer(&self, case: &Case, entry: &ManagedCert) -> Result<&dyn Issuer, String> {
        match &case.revoke_via {
            Some(id) => self.issuer_by_id(id),
            None => self.issuer_of(entry),
        }
    }

    fn issuer_by_id(&self, id: &str) -> Result<&dyn Issuer, String> {
        self.issuers
            .get(id)
            .map(AsRef::as_ref)
            .ok_or_else(|| format!("issuer `{id}` is not configured"))
    }

    fn old_bundle(&self, case: &Case) -> Result<Bundle, String> {
        let id = case.old_bundle.as_deref().ok_or("no snapshot was taken")?;
        self.stored_bundle(&case.cert, id)
    }

    /// Snapshot: the bundle deployed now becomes the durable rollback target (invariant 1).
    fn snapshot(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        if let Some(id) = &case.old_bundle {
            return StepResult::Skipped(format!("snapshot already taken: bundle {id}"));
        }
        let history = match self.store.bundles(&case.cert) {
            Ok(h) => h,
            Err(e) => return fail(e.to_string()),
        };
        let now = Utc::now();
        let result = match Bundle::read_current(entry, now) {
            Ok(on_disk) => {
                if let Some(reported) = self.reported_elsewhere(case, &on_disk) {
                    return StepResult::Fail {
                        detail: format!(
                            "the files hold certificate {} (serial {}), not the certificate the case was opened for ({reported}): the case stops before any change, and its signals stay open; check what is deployed at `{}`, then report again",
                            &on_disk.fingerprints.cert_sha256[..16],
                            on_disk.serial,
                            entry.name
                        ),
                        rollback: false,
                    };
                }
                // The same leaf is the same bundle (recorded once); a revoked one stays so.
                let known = history.iter().rev().find(|b| b.id == on_disk.id);
                match known {
                    Some(b) if b.state == BundleState::Current => {
                        Ok(format!("bundle {} (already in the history)", b.id))
                    }
                    // Revoked stays revoked: it is the rollback target only with --force.
                    Some(b) if b.is_revoked() => {
                        Ok(format!("bundle {} (already in the history, revoked)", b.id))
                    }
                    Some(b) => self
                        .store
                        .set_bundle_state(&case.cert, &b.id, BundleState::Current)
                        .map(|_| format!("bundle {} (back in the history as current)", b.id))
                        .map_err(|e| e.to_string()),
                    None => self
                        .store
                        .append_bundle(&on_disk)
                        .map(|_| format!("bundle {} recorded from the files", on_disk.id))
                        .map_err(|e| e.to_string()),
                }
                .map(|d| (on_disk.id.clone(), d))
            }
            Err(e) => match Bundle::current_of(&history) {
                Some(b) => Ok((
                    b.id.clone(),
                    format!(
                        "the files cannot be read ({e}); the stored current bundle {} is the rollback target",
                        b.id
                    ),
                )),
                None => Err(format!(
                    "the files cannot be read and no bundle is stored to fall back on: {e}"
                )),
            },
        };
        match result {
            Ok((id, detail)) => {
                case.old_bundle = Some(id);
                StepResult::Ok(detail)
            }
            Err(e) => fail(e),
        }
    }

    /// When the case's signals are about certificates and the files hold none of them (what
    /// was reported was replaced while the case waited), the reported ones, shortened
    /// (invariant 9: a case acts only on the certificate its signals were about).
    fn reported_elsewhere(&self, case: &Case, on_disk: &Bundle) -> Option<String> {
        let reported: Vec<String> = case
            .trigger
            .signals
            .iter()
            .filter_map(|k| self.store.get_signal(k).ok().flatten())
            .filter_map(|s| s.cert_sha256)
            .collect();
        if reported.is_empty() || reported.contains(&on_disk.fingerprints.cert_sha256) {
            return None;
        }
        let mut shown: Vec<String> = reported
            .iter()
            .map(|fp| fp.get(..16).unwrap_or(fp).to_string())
            .collect();
        shown.dedup();
        Some(shown.join(", "))
    }

    /// A new key, always (invariant 5), of the entry's profile or else the old key's type.
    async fn new_key(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        if case.new_key.is_some() || case.issued.is_some() {
            return StepResult::Skipped("the new key was generated earlier".into());
        }
        let profile = entry.key_profile.unwrap_or_else(|| {
            self.old_bundle(case)
                .ok()
                .and_then(|b| inspect::read_certificates(b.leaf_pem.as_bytes()).ok())
                .and_then(|c| c.into_iter().next())
                .and_then(|der| inspect::inspect_certificate_der(&der).ok())
                .and_then(|info| info.key.profile_name().and_then(KeyProfile::parse))
                .unwrap_or(KeyProfile::EcdsaP256)
        });
        let generated = tokio::task::spawn_blocking(move || generate_key(profile)).await;
        match generated {
            Ok(Ok(kp)) => match certresponder_issuers::keygen::private_key_pem(&kp) {
                Ok(pem) => {
                    case.new_key = Some(SecretPem::new(pem));
                    StepResult::Ok(format!("new {profile} key"))
                }
                Err(e) => fail(e.to_string()),
            },
            Ok(Err(e)) => fail(e.to_string()),
            Err(e) => fail(format!("key generation task failed: {e}")),
        }
    }

    /// Issues a certificate for the new key, for the old certificate's names.
    async fn issue(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        if case.issued.is_some() {
            return StepResult::Skipped("the certificate was issued earlier".into());
        }
        let issuer = match self.ordering_issuer(case, entry) {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        let old = match self.old_bundle(case).and_then(|b| leaf_info(&b)) {
            Ok(o) => o,
            Err(e) => return fail(e),
        };
        let Some(key) = case.new_key.clone() else {
            return fail("no new key was generated");
        };
        let identifiers = identifiers_of(&old);
        if identifiers.is_empty() {
            return fail("the old certificate names no DNS name or IP address to reissue for");
        }
        // A renewal from the same CA names the certificate it replaces (RFC 9773 §5) when
        // that CA answered renewal information for it.
        let replaces = match (&case.issuer, self.old_bundle(case)) {
            (None, Ok(b))
                if crate::signals::ca::ari::answered(
                    self.store(),
                    &case.cert,
                    &b.fingerprints.cert_sha256,
                    issuer.id(),
                ) =>
            {
                b.leaf_der().ok()
            }
            _ => None,
        };
        // The request in flight is journaled before the issuer is asked; found journaled (an
        // interrupted run, a failure after the CA answered), the issuer is asked first what
        // it issued for it.
        // A request journaled for another key (the case started over with a new one): what
        // the issuer issued for it, if anything, is set aside, and a new request is made.
        if let Some(m) = case.issuing.clone()
            && !same_key(&m, &key)
        {
            if let Ok(Some(block)) = inspect::parse_pem(m.csr_pem.as_bytes()).map(|mut b| b.pop())
                && let Ok(earlier) = self.issuer_by_id(&m.issuer)
            {
                let req = IssueRequest {
                    csr_der: block.der,
                    identifiers: identifiers.clone(),
                    kind: entry.kind,
                    profile: None,
                    replaces: None,
                    request_id: Some(m.request_id.clone()),
                };
                if let Ok(Some(chain)) = earlier.lookup(&req).await {
                    self.set_aside(
                        case,
                        &chain.leaf_pem,
                        Some(m.issuer.clone()),
                        "issued for an earlier run of the case, whose key is gone",
                    );
                }
            }
            case.issuing = None;
        }
        let (csr_der, request_id, resumed) = match &case.issuing {
            Some(m) if m.issuer == issuer.id() => {
                match inspect::parse_pem(m.csr_pem.as_bytes()).map(|mut b| b.pop()) {
                    Ok(Some(block)) => (block.der, m.request_id.clone(), true),
                    Ok(None) => return fail("the journaled request holds no CSR"),
                    Err(e) => return fail(format!("the journaled request's CSR: {e}")),
                }
            }
            _ => {
                let csr_der = match csr(&key, &identifiers) {
                    Ok(d) => d,
                    Err(e) => return fail(e),
                };
                let request_id = request_id(case.id);
                case.issuing = Some(Issuing {
                    request_id: request_id.clone(),
                    issuer: issuer.id().to_string(),
                    csr_pem: inspect::encode_pem("CERTIFICATE REQUEST", &csr_der),
                    at: Utc::now(),
                });
                if let Err(e) = self.save(case) {
                    return fail(format!("journaling the request: {e}"));
                }
                (csr_der, request_id, false)
            }
        };
        let req = IssueRequest {
            csr_der,
            identifiers,
            kind: entry.kind,
            profile: None,
            replaces,
            request_id: Some(request_id.clone()),
        };
        if case.issuer.is_some() && !resumed {
            self.replacement_turn(issuer.id()).await;
        }
        let attempts = self.cfg.respond.issue_attempts;
        let mut attempt = 1;
        let mut ask_first = resumed;
        let mut found = false;
        let chain = loop {
            if ask_first {
                match self.with_slot(issuer.id(), issuer.lookup(&req)).await {
                    Ok(Some(chain)) => {
                        found = true;
                        break chain;
                    }
                    Ok(None) | Err(IssuerError::Unsupported(_)) => {}
                    Err(e) if e.is_retryable() && attempt < attempts => {
                        tokio::time::sleep(self.backoff(&e, attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    Err(e) => {
                        return fail(format!(
                            "issuer `{}` could not say what it issued for request {request_id}: {e}",
                            issuer.id()
                        ));
                    }
                }
            }
            match self.with_slot(issuer.id(), issuer.issue(&req)).await {
                Ok(chain) => break chain,
                Err(e) if e.is_retryable() && attempt < attempts => {
                    let wait = self.backoff(&e, attempt);
                    tracing::warn!(case = case.id, cert = %case.cert, attempt, error = %e, wait_ms = wait.as_millis() as u64, "issuance failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    // The CA may have issued before the error: asked first next time.
                    ask_first = true;
                }
                Err(e) => {
                    let kind = if e.is_retryable() {
                        format!("still failing after {attempt} attempts")
                    } else {
                        "a permanent error".into()
                    };
                    return fail(format!("issuer `{}` refused ({kind}): {e}", issuer.id()));
                }
            }
        };
        // The issuer has answered and nothing is journaled yet: the crash tests stop here.
        super::fault::point("during", Step::Issue);
        case.issuing = None;
        case.issued_count += 1;
        let detail = match inspect::read_certificates(chain.leaf_pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
            .and_then(|d| inspect::inspect_certificate_der(&d).ok())
        {
            Some(info) => format!(
                "issued by `{}`: serial {}, expires {}{}{}",
                issuer.id(),
                info.serial,
                info.not_after.format("%Y-%m-%d %H:%M UTC"),
                if attempt > 1 {
                    format!(" (after {attempt} attempts)")
                } else {
                    String::new()
                },
                match (found, req.replaces.is_some()) {
                    (true, _) => format!(
                        "; found by request {request_id}, issued before the interruption (nothing ordered again)"
                    ),
                    (false, true) => {
                        "; the order named the certificate it replaces (ARI)".to_string()
                    }
                    (false, false) => String::new(),
                }
            ),
            None => format!("issued by `{}`", issuer.id()),
        };
        case.issued = Some(IssuedPem {
            leaf_pem: chain.leaf_pem,
            chain_pem: chain.chain_pem,
        });
        StepResult::Ok(detail)
    }

    /// Checks the new bundle before anyone relies on it.
    fn check(&self, case: &mut Case) -> StepResult {
        let new = match new_bundle(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let old = match self.old_bundle(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        match check_new(&new, &old, &self.key_policy) {
            Ok(d) => StepResult::Ok(d),
            Err(e) => fail(format!("the new bundle is not deployable: {e}")),
        }
    }

    /// Records the new certificate in the CT authorization ledger, before it is deployed.
    fn record(&self, case: &mut Case) -> StepResult {
        let new = match new_bundle(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let entry = LedgerEntry {
            tbs_sha256: new.fingerprints.tbs_sha256.clone(),
            cert: case.cert.clone(),
            serial: new.serial.clone(),
            issuer: new.issuer.clone(),
            case: Some(case.id),
            origin: "issued".into(),
            logged: Vec::new(),
            recorded_at: Utc::now(),
        };
        match self.store.put_ledger(&entry) {
            Ok(()) => StepResult::Ok(format!(
                "TBS hash {} recorded",
                short(&new.fingerprints.tbs_sha256)
            )),
            Err(e) => fail(e.to_string()),
        }
    }

    /// Deploys the new bundle; it becomes `current` in the store.
    async fn deploy_new(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        let bundle = match self.new_or_stored(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let opts = deploy::DeployOptions {
            hook_timeout: self.cfg.respond.hook_timeout,
        };
        // While the files are half written, the shared reload command must not run: it
        // would read a new key beside an old certificate.
        let writing = self.reloader.writing(entry.reload.as_deref()).await;
        let deployed = deploy::deploy(entry, &bundle, &opts).await;
        drop(writing);
        let report = match deployed {
            Ok(r) => r,
            Err(e) => return fail_restore(format!("deploying bundle {}: {e}", bundle.id)),
        };
        if let Err(e) = self.make_current(&bundle) {
            return fail_restore(e);
        }
        case.new_bundle = Some(bundle.id.clone());
        // The key now lives in the bundle history; the case need not keep a copy.
        case.new_key = None;
        let _ = self.event(
            &case.cert,
            "deployed",
            format!(
                "case {}: bundle {} (serial {})",
                case.id, bundle.id, bundle.serial
            ),
        );
        StepResult::Ok(format!(
            "bundle {} written to {} location(s){}",
            bundle.id,
            report.written.len(),
            report
                .hook
                .map(|h| format!("; deploy hook: {}", h.describe()))
                .unwrap_or_default()
        ))
    }

    /// The new bundle: built from the case until it is deployed, then read from the store.
    fn new_or_stored(&self, case: &Case) -> Result<Bundle, String> {
        match (&case.new_bundle, &case.new_key) {
            (Some(id), None) => self.stored_bundle(&case.cert, id),
            _ => new_bundle(case),
        }
    }

    /// Makes `bundle` the current one in the store (appending it the first time).
    pub(crate) fn make_current(&self, bundle: &Bundle) -> Result<(), String> {
        let history = self
            .store
            .bundles(&bundle.cert_id)
            .map_err(|e| e.to_string())?;
        let result = if history.iter().any(|b| b.id == bundle.id) {
            self.store
                .set_bundle_state(&bundle.cert_id, &bundle.id, BundleState::Current)
                .map(|_| ())
        } else {
            self.store.append_bundle(bundle).map(|_| ())
        };
        result.map_err(|e| e.to_string())
    }

    async fn reload_step(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        let bundle = match self.new_or_stored(case) {
            Ok(b) => b,
            Err(e) => return fail_restore(e),
        };
        match self.reload_checked(entry, &bundle).await {
            Ok(Some(d)) => StepResult::Ok(d),
            Ok(None) => StepResult::Skipped("the entry has no reload command".into()),
            Err(e) => fail_restore(e),
        }
    }

    /// Reloads the service after checking that every location holds `bundle` complete, so a
    /// reload never picks up a half-written set of files.
    pub(crate) async fn reload_checked(
        &self,
        entry: &ManagedCert,
        bundle: &Bundle,
    ) -> Result<Option<String>, String> {
        deploy::check_deployed(entry, bundle).map_err(|e| {
            format!(
                "not reloading: the files do not hold bundle {}: {e}",
                bundle.id
            )
        })?;
        let Some(command) = &entry.reload else {
            return Ok(None);
        };
        let env = vec![
            (
                "CERTRESPONDER_CERT_NAME".to_string(),
                entry.name.to_string(),
            ),
            ("CERTRESPONDER_BUNDLE_ID".to_string(), bundle.id.clone()),
        ];
        match self.reloader.reload(command, &env).await {
            Ok(outcome) if outcome.success() => Ok(Some(format!(
                "`{command}`: {} in {} ms",
                outcome.describe(),
                outcome.duration_ms
            ))),
            Ok(outcome) => Err(format!("reload `{command}`: {}", outcome.describe())),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn verify_step(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        let bundle = match self.new_or_stored(case) {
            Ok(b) => b,
            Err(e) => return fail_restore(e),
        };
        match self.verify_bundle(entry, &bundle).await {
            Ok(d) => StepResult::Ok(d),
            Err(e) => fail_restore(e),
        }
    }

    /// Checks that the endpoints serve `bundle`'s leaf, or, without endpoints, that the files
    /// hold it.
    pub(crate) async fn verify_bundle(
        &self,
        entry: &ManagedCert,
        bundle: &Bundle,
    ) -> Result<String, String> {
        if entry.verify.is_empty() {
            return deploy::check_deployed(entry, bundle)
                .map(|()| {
                    format!(
                        "no verify endpoints; every location re-read and holds bundle {}",
                        bundle.id
                    )
                })
                .map_err(|e| e.to_string());
        }
        let leaf = bundle.leaf_der().map_err(|e| e.to_string())?;
        let opts = verify::VerifyOptions {
            timeout: self.cfg.respond.verify_timeout,
            interval: self.cfg.respond.verify_interval,
            consecutive: self.cfg.respond.verify_consecutive,
            ..verify::VerifyOptions::default()
        };
        verify::verify_served(&entry.verify, &leaf, &opts)
            .await
            .map(|report| {
                format!(
                    "{} endpoint(s) serve bundle {} ({})",
                    report.endpoints.len(),
                    bundle.id,
                    report
                        .endpoints
                        .iter()
                        .map(|e| format!("{} after {} attempt(s)", e.address, e.attempts))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .map_err(|e| e.to_string())
    }

    /// Revokes the old certificate, proving possession of its key when the bundle has it.
    /// A failure is [`StepResult::NotRevoked`]: the engine decides, from the case, whether
    /// to try again later, go on with the replacement or stop.
    async fn revoke(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        let issuer = match self.revoking_issuer(case, entry) {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        let old = match self.old_bundle(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let der = match old.leaf_der() {
            Ok(d) => d,
            Err(e) => return fail(e.to_string()),
        };
        let reason = case
            .reason
            .unwrap_or(certresponder_issuers::RevocationReason::Superseded);
        // Revoking a short-lived certificate is optional (BRs §4.9.1.1).
        let short_lived = inspect::inspect_certificate_der(&der)
            .ok()
            .filter(CertInfo::is_short_lived);
        let not_revoked = |c: &CertInfo, why: String| {
            StepResult::Skipped(format!(
                "not revoked: short-lived (serial {}, valid {} s), expires at {}; {why}",
                old.serial,
                c.validity_secs(),
                c.not_after.format("%Y-%m-%d %H:%M:%S UTC")
            ))
        };
        if let Some(c) = &short_lived
            && case
                .decision
                .as_ref()
                .is_some_and(|d| !d.revoke_short_lived)
        {
            let rule = case.decision.as_ref().map_or("?", |d| d.rule.name.as_str());
            return not_revoked(
                c,
                format!(
                    "rule `{rule}` leaves short-lived certificates unrevoked (revoke_short_lived = false)"
                ),
            );
        }
        let req = RevokeRequest {
            certificate_der: der,
            reason,
            certificate_key: old.key_pem.clone(),
        };
        let attempts = self.cfg.respond.issue_attempts;
        let mut attempt = 1;
        let detail = loop {
            match self.with_slot(issuer.id(), issuer.revoke(&req)).await {
                Ok(()) => {
                    break format!(
                        "serial {} revoked at `{}` ({reason})",
                        old.serial,
                        issuer.id()
                    );
                }
                Err(IssuerError::AlreadyRevoked(_)) => {
                    break format!("serial {} was already revoked", old.serial);
                }
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tokio::time::sleep(self.backoff(&e, attempt)).await;
                    attempt += 1;
                }
                // The CA said no (it refuses, or does not offer revocation): allowed for a
                // short-lived certificate. Our own failures to reach it are not a refusal.
                Err(
                    e @ (IssuerError::NotAllowed(_)
                    | IssuerError::BadRequest(_)
                    | IssuerError::Unsupported(_)),
                ) if short_lived.is_some() => {
                    if let Some(c) = &short_lived {
                        return not_revoked(
                            c,
                            format!(
                                "`{}` did not revoke it ({e}), which the Baseline Requirements allow for a short-lived certificate",
                                issuer.id()
                            ),
                        );
                    }
                }
                Err(e) => {
                    return StepResult::NotRevoked {
                        detail: format!(
                            "revoking serial {} (issued by {}) at `{}`: {e}",
                            old.serial,
                            old_issuer_name(&old),
                            issuer.id()
                        ),
                        retryable: e.is_retryable(),
                    };
                }
            }
        };
        if let Err(e) = self
            .store
            .set_bundle_state(&case.cert, &old.id, BundleState::Revoked)
        {
            return fail(e.to_string());
        }
        // The same certificate in another entry's history is revoked too.
        if let Err(e) = self
            .store
            .mark_revoked(&old.fingerprints.cert_sha256, Utc::now())
        {
            return fail(e.to_string());
        }
        let _ = self.event(&case.cert, "revoked", format!("case {}: {detail}", case.id));
        StepResult::Ok(detail)
    }

    /// Reads the old certificate's status back; `unknown` is recorded, not a failure.
    async fn confirm(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        if !case.revoked_old() {
            return StepResult::Skipped("nothing was revoked".into());
        }
        let issuer = match self.revoking_issuer(case, entry) {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        let der = match self
            .old_bundle(case)
            .and_then(|b| b.leaf_der().map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let started = std::time::Instant::now();
        let timeout = self.cfg.respond.confirm_timeout;
        loop {
            match self.with_slot(issuer.id(), issuer.status(&der)).await {
                Ok(IssuerCertStatus::Revoked { reason, revoked_at }) => {
                    return StepResult::Ok(revoked_words(issuer.id(), revoked_at, reason));
                }
                Ok(IssuerCertStatus::Unknown { why }) => {
                    return StepResult::Ok(format!("status unknown (recorded): {why}"));
                }
                Ok(IssuerCertStatus::Good) if started.elapsed() < timeout => {}
                Ok(IssuerCertStatus::Good) => {
                    let _ = self.event(
                        &case.cert,
                        "revocation_unconfirmed",
                        format!(
                            "case {}: the issuer still reports the old certificate good",
                            case.id
                        ),
                    );
                    return StepResult::Unconfirmed(format!(
                        "NOT confirmed: `{}` still reports the old certificate good after {} s (its CRL may lag the revocation); each CA check asks again",
                        issuer.id(),
                        started.elapsed().as_secs()
                    ));
                }
                Err(e) if e.is_retryable() && started.elapsed() < timeout => {}
                Err(e) => {
                    return StepResult::Ok(format!("status unknown (recorded): {e}"));
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// Asks the revoking issuer once about the case's old certificate: what it says when it
    /// reports it revoked, `None` while it does not.
    pub(crate) async fn revoked_status(
        &self,
        case: &Case,
        entry: &ManagedCert,
    ) -> Result<Option<String>, String> {
        let issuer = self.revoking_issuer(case, entry)?;
        let der = self
            .old_bundle(case)?
            .leaf_der()
            .map_err(|e| e.to_string())?;
        match self.with_slot(issuer.id(), issuer.status(&der)).await {
            Ok(IssuerCertStatus::Revoked { reason, revoked_at }) => {
                Ok(Some(revoked_words(issuer.id(), revoked_at, reason)))
            }
            // As the Confirm step records it: the issuer cannot say (no CRL to read).
            Ok(IssuerCertStatus::Unknown { why }) => {
                Ok(Some(format!("status unknown (recorded): {why}")))
            }
            Ok(IssuerCertStatus::Good) => Ok(None),
            Err(e) => Err(format!("`{}`: {e}", issuer.id())),
        }
    }

    /// Closes the case: resolves the signals it answered and trims the bundle history.
    pub(crate) fn close(&self, case: &mut Case) -> StepResult {
        let now = Utc::now();
        let mut resolved = 0;
        for key in &case.trigger.signals {
            match state::resolve_key(self.store.as_ref(), key, now, state::ENGINE_ACTOR) {
                Ok(true) => resolved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(case = case.id, signal = %key, error = %e, "signal not resolved")
                }
            }
        }
        let protect: Vec<String> = case
            .old_bundle
            .iter()
            .chain(case.new_bundle.iter())
            .cloned()
            .collect();
        let pruned = self
            .store
            .prune_bundles(&case.cert, self.cfg.respond.history_keep, &protect)
            .unwrap_or_default();
        let _ = self.event(&case.cert, "case_closed", format!("case {} done", case.id));
        StepResult::Ok(format!(
            "{resolved} signal(s) resolved{}",
            if pruned.is_empty() {
                String::new()
            } else {
                format!("; {} old bundle(s) pruned from the history", pruned.len())
            }
        ))
    }

    /// Restores the snapshot bundle after a failed deploy, reload or verify.
    async fn rollback_step(&self, case: &mut Case, entry: &ManagedCert) -> StepResult {
        let old = match self.old_bundle(case) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        match self.restore(entry, &old).await {
            Ok(d) => {
                let _ = self.event(
                    &case.cert,
                    "rolled_back",
                    format!("case {}: bundle {} restored", case.id, old.id),
                );
                StepResult::Ok(d)
            }
            Err(e) => fail(e),
        }
    }

    /// Writes `bundle` to every location, makes it current, reloads and verifies it is
    /// served again.
    pub(crate) async fn restore(
        &self,
        entry: &ManagedCert,
        bundle: &Bundle,
    ) -> Result<String, String> {
        let opts = deploy::DeployOptions {
            hook_timeout: self.cfg.respond.hook_timeout,
        };
        let writing = self.reloader.writing(entry.reload.as_deref()).await;
        let deployed = deploy::deploy(entry, bundle, &opts).await;
        drop(writing);
        deployed.map_err(|e| format!("restoring bundle {}: {e}", bundle.id))?;
        self.make_current(bundle)?;
        // A reload that fails again does not decide the rollback: the service most likely
        // still runs the old bundle it never let go of. What it serves decides.
        let reloaded = match self.reload_checked(entry, bundle).await {
            Ok(Some(_)) => " and reloaded".to_string(),
            Ok(None) => String::new(),
            Err(e) => format!(" (the reload failed again: {e})"),
        };
        let verified = self.verify_bundle(entry, bundle).await?;
        Ok(format!(
            "bundle {} restored{reloaded}; {verified}",
            bundle.id
        ))
    }
}

fn leaf_info(b: &Bundle) -> Result<CertInfo, String> {
    let der = b.leaf_der().map_err(|e| format!("bundle {}: {e}", b.id))?;
    inspect::inspect_certificate_der(&der).map_err(|e| format!("bundle {}: {e}", b.id))
}

/// The names to reissue for: the old certificate's SANs, or its CNs when it has none.
fn identifiers_of(old: &CertInfo) -> Vec<Identifier> {
    let mut ids: Vec<Identifier> = old
        .dns_names
        .iter()
        .map(|d| Identifier::Dns(d.to_ascii_lowercase()))
        .chain(old.ip_addresses.iter().map(|ip| Identifier::Ip(*ip)))
        .collect();
    if ids.is_empty() {
        ids = old
            .subject_cns
            .iter()
            .map(|cn| match cn.parse::<IpAddr>() {
                Ok(ip) => Identifier::Ip(ip),
                Err(_) => Identifier::Dns(cn.to_ascii_lowercase()),
            })
            .collect();
    }
    ids.dedup();
    ids
}

/// A PKCS#10 request for the names, signed by the new key.
fn csr(key: &SecretPem, identifiers: &[Identifier]) -> Result<Vec<u8>, String> {
    let kp = rcgen::KeyPair::from_pem(key.expose())
        .map_err(|e| format!("the new key cannot be loaded: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    for id in identifiers {
        params.subject_alt_names.push(match id {
            Identifier::Dns(d) => rcgen::SanType::DnsName(
                d.clone()
                    .try_into()
                    .map_err(|e| format!("`{d}` is not a DNS name rcgen accepts: {e}"))?,
            ),
            Identifier::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        });
    }
    if let Some(first) = identifiers.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.to_string());
    }
    params
        .serialize_request(&kp)
        .map(|csr| csr.der().to_vec())
        .map_err(|e| format!("building the CSR: {e}"))
}

/// The new bundle from what the case holds (the issued chain and the new key).
fn new_bundle(case: &Case) -> Result<Bundle, String> {
    let issued = case.issued.as_ref().ok_or("nothing was issued")?;
    let key = case.new_key.clone().ok_or("the new key is missing")?;
    let leaf_der = inspect::read_certificates(issued.leaf_pem.as_bytes())
        .map_err(|e| format!("the issued leaf: {e}"))?
        .into_iter()
        .next()
        .ok_or("the issuer returned no leaf certificate")?;
    let leaf =
        inspect::inspect_certificate_der(&leaf_der).map_err(|e| format!("the issued leaf: {e}"))?;
    let chain = if issued.chain_pem.trim().is_empty() {
        Vec::new()
    } else {
        inspect::read_certificates(issued.chain_pem.as_bytes())
            .map_err(|e| format!("the issued chain: {e}"))?
    };
    let mut b = Bundle::from_parts(
        &case.cert,
        &leaf,
        &leaf_der,
        &chain,
        Some(key),
        "issued",
        Utc::now(),
    );
    b.origin = format!("issued (case {})", case.id);
    Ok(b)
}

/// Checks a new bundle against the old one: key matches, new key, names covered, key checks
/// pass, valid now, signed by its chain.
fn check_new(
    new: &Bundle,
    old: &Bundle,
    policy: &crate::signals::weak::KeyPolicy,
) -> Result<String, String> {
    let leaf_der = new.leaf_der().map_err(|e| e.to_string())?;
    let leaf = inspect::inspect_certificate_der(&leaf_der).map_err(|e| e.to_string())?;
    let old_info = leaf_info(old)?;
    let key = new
        .key_pem
        .as_ref()
        .ok_or("the new bundle has no key")
        .and_then(|k| {
            inspect::read_private_key(k.expose().as_bytes())
                .map_err(|_| "the new key cannot be read")
        })?;
    if !key.public.same_public_key(&leaf.key) {
        return Err("the issued certificate does not certify the new key".into());
    }
    if leaf.fingerprints.spki_sha256 == old_info.fingerprints.spki_sha256 {
        return Err("the new certificate carries the old key".into());
    }
    let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
    let new_dns = lower(&leaf.dns_names);
    let missing: Vec<String> = identifiers_of(&old_info)
        .into_iter()
        .filter(|id| match id {
            Identifier::Dns(d) => !new_dns.contains(d),
            Identifier::Ip(ip) => !leaf.ip_addresses.contains(ip),
        })
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the new certificate does not cover {}",
            missing.join(", ")
        ));
    }
    let findings: Vec<String> = crate::signals::weak::check_key(&leaf.key, policy)
        .into_iter()
        .filter(|f| f.confidence >= Confidence::Medium)
        .map(|f| format!("{} ({})", f.check, f.message))
        .collect();
    if !findings.is_empty() {
        return Err(format!(
            "the new key fails the key checks: {}",
            findings.join("; ")
        ));
    }
    let now = Utc::now();
    if leaf.not_after <= now {
        return Err("the new certificate has already expired".into());
    }
    if leaf.not_before > now + chrono::Duration::minutes(5) {
        return Err(format!(
            "the new certificate is not valid before {}",
            leaf.not_before
        ));
    }
    if let Some(first) = inspect::read_certificates(new.chain_pem.as_bytes())
        .ok()
        .and_then(|c| c.into_iter().next())
        && !inspect::cert_signed_by(&leaf_der, &first).unwrap_or(false)
    {
        return Err("the leaf is not signed by the first certificate of its chain".into());
    }
    Ok(format!(
        "bundle {}: {} key certified, names {} covered, key checks pass, valid until {}",
        new.id,
        leaf.key.describe(),
        leaf.dns_names
            .iter()
            .cloned()
            .chain(leaf.ip_addresses.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        leaf.not_after.format("%Y-%m-%d")
    ))
}

impl Engine {
    /// Sets aside the certificate a case obtained when it will not be deployed (the case
    /// failed before deploying it, or rolled back, or starts over): it becomes an orphan, to
    /// be recorded in the CT ledger and revoked by [`Engine::retire_orphans`].
    pub(crate) fn set_aside_issued(&self, case: &mut Case, why: &str) {
        let Some(issued) = &case.issued else {
            return;
        };
        let current = self
            .store
            .bundles(&case.cert)
            .ok()
            .and_then(|h| Bundle::current_of(&h).map(|b| b.id.clone()));
        if case.new_bundle.is_some() && case.new_bundle == current {
            return;
        }
        let issuer = case.issuer.clone().or_else(|| {
            self.store
                .get_cert(&case.cert)
                .ok()
                .flatten()
                .and_then(|r| r.entry.issuer)
        });
        self.set_aside(case, &issued.leaf_pem.clone(), issuer, why);
    }

    /// Records `leaf_pem` as an orphan of `case`, once.
    fn set_aside(&self, case: &mut Case, leaf_pem: &str, issuer: Option<String>, why: &str) {
        let Some(info) = inspect::read_certificates(leaf_pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
            .and_then(|d| inspect::inspect_certificate_der(&d).ok())
        else {
            tracing::warn!(
                case = case.id,
                "an unused certificate cannot be read; not revoked"
            );
            return;
        };
        if case.orphans.iter().any(|o| o.serial == info.serial) {
            return;
        }
        tracing::info!(case = case.id, cert = %case.cert, serial = %info.serial, why, "a certificate of the case will not be deployed; it is revoked");
        case.orphans.push(Orphan {
            serial: info.serial.clone(),
            tbs_sha256: info.fingerprints.tbs_sha256.clone(),
            issuer: issuer.unwrap_or_default(),
            leaf_pem: leaf_pem.to_string(),
            why: why.to_string(),
            state: ORPHAN_PENDING.into(),
            at: Utc::now(),
        });
    }

    /// Records each pending orphan of `case` in the CT ledger (so that CT monitoring knows
    /// it for ours) and revokes it (superseded) through the issuer that issued it.
    pub(crate) async fn retire_orphans(&self, case: &mut Case) {
        let mut changed = false;
        for i in 0..case.orphans.len() {
            if case.orphans[i].state != ORPHAN_PENDING {
                continue;
            }
            let o = case.orphans[i].clone();
            let Some(der) = inspect::read_certificates(o.leaf_pem.as_bytes())
                .ok()
                .and_then(|c| c.into_iter().next())
            else {
                continue;
            };
            let info = inspect::inspect_certificate_der(&der).ok();
            if self
                .store
                .get_ledger(&o.tbs_sha256)
                .ok()
                .flatten()
                .is_none()
            {
                let entry = LedgerEntry {
                    tbs_sha256: o.tbs_sha256.clone(),
                    cert: case.cert.clone(),
                    serial: o.serial.clone(),
                    issuer: info.as_ref().map(|i| i.issuer.clone()).unwrap_or_default(),
                    case: Some(case.id),
                    origin: "issued".into(),
                    logged: Vec::new(),
                    recorded_at: Utc::now(),
                };
                if let Err(e) = self.store.put_ledger(&entry) {
                    tracing::warn!(case = case.id, serial = %o.serial, error = %e, "an unused certificate not recorded in the CT ledger");
                }
            }
            let state = match self.issuer_by_id(&o.issuer) {
                Err(e) => format!("not revoked: {e}"),
                Ok(issuer) => {
                    let req = RevokeRequest {
                        certificate_der: der,
                        reason: certresponder_issuers::RevocationReason::Superseded,
                        certificate_key: None,
                    };
                    match self.with_slot(issuer.id(), issuer.revoke(&req)).await {
                        Ok(()) | Err(IssuerError::AlreadyRevoked(_)) => "revoked".to_string(),
                        Err(e) => format!("not revoked: {e}"),
                    }
                }
            };
            if state == "revoked"
                && let Some(info) = &info
            {
                let _ = self
                    .store
                    .mark_revoked(&info.fingerprints.cert_sha256, Utc::now());
            }
            let _ = self.event(
                &case.cert,
                "unused_certificate",
                format!(
                    "case {}: serial {} ({}) was issued and not deployed: {state}",
                    case.id, o.serial, o.why
                ),
            );
            case.orphans[i].state = state;
            changed = true;
        }
        if changed && let Err(e) = self.save(case) {
            tracing::warn!(case = case.id, error = %e, "the unused certificates' state not journaled");
        }
    }
}

/// An orphan not yet recorded and revoked.
const ORPHAN_PENDING: &str = "pending";
