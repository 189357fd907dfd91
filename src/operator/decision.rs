//! The controller's decision for one TenantImport, taken from its metadata and
//! status alone, and the conditions it writes for each result.
//!
//! An import belongs to a generation and a value of the re-run annotation. Imported,
//! Conflict and Invalid are final for that pair. LockTimeout and Failed are retried
//! with a per-resource exponential backoff counted from `status.attempts`, so the
//! schedule survives a restart of the operator.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::crd::{ImportOutcome, TenantImportStatus};

/// The condition type that is `True` once the tenant is imported.
pub const CONDITION_READY: &str = "Ready";
/// The condition type that is `True` while the controller is importing or will retry.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// The kstatus condition type that is `True` while an attempt runs or a retry is
/// pending, the same cases as [`CONDITION_PROGRESSING`].
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// The kstatus condition type that is `True` when the outcome is a final failure
/// (Conflict or Invalid) that only a new generation or re-run value changes.
pub const CONDITION_STALLED: &str = "Stalled";

/// Condition reasons, a contract with users and their tooling.
pub mod reason {
    /// An attempt is running.
    pub const IMPORTING: &str = "Importing";
    /// The tenant was imported.
    pub const IMPORTED: &str = "Imported";
    /// The tenant or one of its objects already exists in the target.
    pub const CONFLICT: &str = "Conflict";
    /// Another import held the target's Lease for the whole lock timeout.
    pub const LOCK_TIMEOUT: &str = "LockTimeout";
    /// The archive breaks a rule of the archive format.
    pub const INVALID_ARCHIVE: &str = "InvalidArchive";
    /// The archive's SHA-256 differs from `spec.source.sha256`.
    pub const DIGEST_MISMATCH: &str = "DigestMismatch";
    /// The archive is larger than the operator's size limit.
    pub const ARCHIVE_TOO_LARGE: &str = "ArchiveTooLarge";
    /// `spec.source` cannot be used (unsupported URL or options).
    pub const INVALID_SOURCE: &str = "InvalidSource";
    /// A Secret or one of its keys is missing.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// Object storage could not be read (unreachable, missing object, denied).
    pub const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
    /// The configuration or reporting database failed.
    pub const DATABASE_UNAVAILABLE: &str = "DatabaseUnavailable";
    /// The Lease could not be read or written.
    pub const LOCK_UNAVAILABLE: &str = "LockUnavailable";
    /// The target's Lease was taken over or expired before the import committed, so
    /// the import was rolled back.
    pub const LOCK_LOST: &str = "LockLost";
    /// The import failed for another reason, named in the message.
    pub const IMPORT_FAILED: &str = "ImportFailed";
}

/// The action of one reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The outcome of this generation and re-run value is final.
    Done,
    /// A retry is due later.
    Wait(Duration),
    /// Run attempt number `attempt`; `fresh` when it is the first for this
    /// generation and re-run value.
    Import {
        /// The attempt number, from 1.
        attempt: u32,
        /// Whether earlier attempts belong to another generation or re-run value.
        fresh: bool,
    },
}

/// The retry schedule of LockTimeout and Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first attempt.
    pub initial: Duration,
    /// The maximum delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Returns the delay after attempt number `attempts`: `initial`, doubled per
    /// further attempt, capped at `max`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(16);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Decides what to do for a resource at `generation` with re-run value `rerun`.
pub fn decide(
    generation: Option<i64>,
    rerun: Option<&str>,
    status: Option<&TenantImportStatus>,
    backoff: Backoff,
    now: DateTime<Utc>,
) -> Decision {
    let Some(status) = status.filter(|s| belongs_to(s, generation, rerun)) else {
        return Decision::Import {
            attempt: 1,
            fresh: true,
        };
    };
    let next = Decision::Import {
        attempt: status.attempts.saturating_add(1),
        fresh: false,
    };
    match status.outcome {
        Some(ImportOutcome::Imported | ImportOutcome::Conflict | ImportOutcome::Invalid) => {
            Decision::Done
        }
        Some(ImportOutcome::LockTimeout | ImportOutcome::Failed) => {
            let Some(last) = &status.last_attempt_at else {
                return next;
            };
            let due = last.0 + backoff.delay(status.attempts);
            match (due - now).to_std() {
                Ok(remaining) if !remaining.is_zero() => Decision::Wait(remaining),
                _ => next,
            }
        }
        // An attempt started but never recorded a verdict: the operator stopped
        // during it. The engine's import id makes running it again safe.
        None => next,
    }
}

fn belongs_to(status: &TenantImportStatus, generation: Option<i64>, rerun: Option<&str>) -> bool {
    status.observed_generation == generation && status.observed_rerun.as_deref() == rerun
}

/// Tells whether an outcome ends the work on its generation and re-run value.
pub fn is_final(outcome: ImportOutcome) -> bool {
    matches!(
        outcome,
        ImportOutcome::Imported | ImportOutcome::Conflict | ImportOutcome::Invalid
    )
}

/// Sets `condition` in `conditions`, keeping the previous `lastTransitionTime` when
/// its status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

/// Sets the `Ready`, `Progressing`, `Reconciling` and `Stalled` conditions for a
/// result with `reason`.
///
/// `outcome` is `None` while an attempt runs. Flux reads `Ready`, `Reconciling` and
/// `Stalled` (kstatus), and the other tools read `Ready` and `Progressing`.
pub fn set_conditions(
    status: &mut TenantImportStatus,
    outcome: Option<ImportOutcome>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let ready = outcome == Some(ImportOutcome::Imported);
    let progressing = outcome.is_none_or(|o| !is_final(o));
    let stalled = matches!(
        outcome,
        Some(ImportOutcome::Conflict | ImportOutcome::Invalid)
    );
    let condition = |type_: &str, value: bool| Condition {
        type_: type_.to_owned(),
        status: if value { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    set_condition(&mut status.conditions, condition(CONDITION_READY, ready));
    set_condition(
        &mut status.conditions,
        condition(CONDITION_PROGRESSING, progressing),
    );
    set_condition(
        &mut status.conditions,
        condition(CONDITION_RECONCILING, progressing),
    );
    set_condition(
        &mut status.conditions,
        condition(CONDITION_STALLED, stalled),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(outcome: Option<ImportOutcome>, attempts: u32) -> TenantImportStatus {
        TenantImportStatus {
            outcome,
            observed_generation: Some(1),
            attempts,
            last_attempt_at: Some(Time(at(0))),
            ..TenantImportStatus::default()
        }
    }

    /// Name, status, re-run value, seconds after the last attempt, expected decision.
    type Case = (
        &'static str,
        Option<TenantImportStatus>,
        Option<&'static str>,
        i64,
        Decision,
    );

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn decide_table() {
        let backoff = Backoff::default();
        let cases: Vec<Case> = vec![
            (
                "no status",
                None,
                None,
                0,
                Decision::Import {
                    attempt: 1,
                    fresh: true,
                },
            ),
            (
                "imported",
                Some(status(Some(ImportOutcome::Imported), 1)),
                None,
                0,
                Decision::Done,
            ),
            (
                "conflict",
                Some(status(Some(ImportOutcome::Conflict), 1)),
                None,
                0,
                Decision::Done,
            ),
            (
                "invalid",
                Some(status(Some(ImportOutcome::Invalid), 2)),
                None,
                0,
                Decision::Done,
            ),
            (
                "failed, backoff running",
                Some(status(Some(ImportOutcome::Failed), 1)),
                None,
                2,
                Decision::Wait(Duration::from_secs(3)),
            ),
            (
                "failed, backoff over",
                Some(status(Some(ImportOutcome::Failed), 1)),
                None,
                5,
                Decision::Import {
                    attempt: 2,
                    fresh: false,
                },
            ),
            (
                "lock timeout, third attempt waits 20 s",
                Some(status(Some(ImportOutcome::LockTimeout), 3)),
                None,
                19,
                Decision::Wait(Duration::from_secs(1)),
            ),
            (
                "interrupted attempt",
                Some(status(None, 1)),
                None,
                0,
                Decision::Import {
                    attempt: 2,
                    fresh: false,
                },
            ),
            (
                "imported, new re-run value",
                Some(status(Some(ImportOutcome::Imported), 1)),
                Some("2"),
                0,
                Decision::Import {
                    attempt: 1,
                    fresh: true,
                },
            ),
        ];
        for (name, status, rerun, seconds, expected) in cases {
            let decision = decide(Some(1), rerun, status.as_ref(), backoff, at(seconds));
            assert_eq!(decision, expected, "case {name}");
        }
    }

    #[test]
    fn new_generation_starts_over() {
        let old = status(Some(ImportOutcome::Imported), 1);
        let decision = decide(Some(2), None, Some(&old), Backoff::default(), at(0));
        assert_eq!(
            decision,
            Decision::Import {
                attempt: 1,
                fresh: true
            }
        );
    }

    #[test]
    fn backoff_doubles_to_cap() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (1..=8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.delay(u32::MAX), backoff.max);
    }

    #[test]
    fn conditions_follow_outcome() {
        // Outcome, then the expected Ready, Progressing, Reconciling and Stalled.
        let cases = [
            (
                Some(ImportOutcome::Imported),
                ["True", "False", "False", "False"],
            ),
            (
                Some(ImportOutcome::Conflict),
                ["False", "False", "False", "True"],
            ),
            (
                Some(ImportOutcome::Invalid),
                ["False", "False", "False", "True"],
            ),
            (
                Some(ImportOutcome::LockTimeout),
                ["False", "True", "True", "False"],
            ),
            (
                Some(ImportOutcome::Failed),
                ["False", "True", "True", "False"],
            ),
            (None, ["False", "True", "True", "False"]),
        ];
        let types = [
            CONDITION_READY,
            CONDITION_PROGRESSING,
            CONDITION_RECONCILING,
            CONDITION_STALLED,
        ];
        for (outcome, expected) in cases {
            let mut status = TenantImportStatus::default();
            set_conditions(&mut status, outcome, "Reason", "message", Some(3), at(0));
            assert_eq!(status.conditions.len(), types.len(), "{outcome:?}");
            for (type_, value) in types.into_iter().zip(expected) {
                let condition = status.conditions.iter().find(|c| c.type_ == type_);
                let found = condition.map(|c| (c.status.as_str(), c.reason.as_str()));
                assert_eq!(found, Some((value, "Reason")), "{type_} for {outcome:?}");
                let generation = condition.and_then(|c| c.observed_generation);
                assert_eq!(generation, Some(3), "{type_} for {outcome:?}");
            }
        }
    }

    #[test]
    fn unchanged_condition_keeps_transition_time() {
        let mut status = TenantImportStatus::default();
        let failed = Some(ImportOutcome::Failed);
        set_conditions(
            &mut status,
            failed,
            "SourceUnavailable",
            "first",
            Some(1),
            at(0),
        );
        set_conditions(
            &mut status,
            failed,
            "SourceUnavailable",
            "second",
            Some(1),
            at(60),
        );

        let ready = &status.conditions[0];
        assert_eq!(ready.last_transition_time, Time(at(0)));
        assert_eq!(ready.message, "second");

        set_conditions(
            &mut status,
            Some(ImportOutcome::Imported),
            "Imported",
            "ok",
            Some(1),
            at(90),
        );
        assert_eq!(status.conditions[0].last_transition_time, Time(at(90)));
    }
}
