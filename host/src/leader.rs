//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics and
//! controller-runtime's defaults, so that of several replicas of the host only one reconciles.
//!
//! Every candidate tries to take or renew the Lease every retry period. A Lease held by
//! another identity is free once its holder has not renewed it for the lease duration, as
//! seen by this candidate's own clock (the holder's timestamps are only compared for change,
//! so clock skew between nodes does not matter). Writes carry the Lease's `resourceVersion`,
//! so two candidates can never both take it. The leader gives up when it has not renewed
//! within the renew deadline; a leader that stops cleanly empties the holder, so that a
//! candidate takes over at its next try instead of after the lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// How the host takes part in leader election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This host's identity: `<hostname>_<uuid>` by default.
    pub identity: String,
    /// How long a Lease stays held without a renewal (controller-runtime: 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (10 s).
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease, and the leader renews it (2 s).
    pub retry_period: Duration,
}

impl LeaderElection {
    /// A Lease `name` in `namespace`, with controller-runtime's durations and a fresh identity.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `<hostname>_<random UUID>`: unique per process, and says which pod holds the Lease.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "wasm-reconciler".to_owned());
    format!("{host}_{}", random_uuid())
}

/// A version 4 UUID.
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: the time still tells processes apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// What this candidate last saw of the Lease, and when by its own clock.
#[derive(Debug, Clone)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    duration: Duration,
    at: Instant,
}

/// One candidate: takes, renews and releases the Lease.
pub(crate) struct Elector {
    api: Api<Lease>,
    config: LeaderElection,
    observed: Option<Observed>,
}

impl Elector {
    pub(crate) fn new(client: kube::Client, config: LeaderElection) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    pub(crate) fn config(&self) -> &LeaderElection {
        &self.config
    }

    /// Tries every retry period until this host holds the Lease.
    pub(crate) async fn acquire(&mut self) {
        let mut logged_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {
                    let holder = self.observed.as_ref().and_then(|seen| seen.holder.clone());
                    if holder != logged_holder {
                        tracing::info!(lease = %self.config.name, holder = holder.as_deref().unwrap_or(""), "another host leads; waiting to take over");
                        logged_holder = holder;
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.config.name, %error, "cannot read or take the Lease; retrying");
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews every retry period while this host leads; returns once it no longer does: it
    /// could not renew within the renew deadline, or found another holder.
    pub(crate) async fn hold(&mut self) -> String {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew());
            match attempt.await {
                Ok(Ok(true)) => last_renewed = Instant::now(),
                Ok(Ok(false)) => {
                    let holder = self.observed.as_ref().and_then(|seen| seen.holder.clone());
                    return format!(
                        "the Lease is held by {}",
                        holder.as_deref().unwrap_or("nobody")
                    );
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.config.name, %error, "cannot renew the Lease; retrying");
                }
                Err(_) => {}
            }
            if last_renewed.elapsed() >= self.config.renew_deadline {
                return format!(
                    "not renewed within the renew deadline of {:?}",
                    self.config.renew_deadline
                );
            }
        }
    }

    /// Gives the Lease up if this host holds it, so that another takes over at once.
    pub(crate) async fn release(&mut self) {
        let lease = match self.api.get_opt(&self.config.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(lease = %self.config.name, %error, "cannot release the Lease; it expires on its own");
                return;
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let mut released = lease;
        released.spec = Some(LeaseSpec {
            holder_identity: None,
            // client-go's release: a second, so that the Lease is free even for a
            // candidate that does not look at the holder.
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(Timestamp::now())),
            acquire_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: spec.lease_transitions,
            ..LeaseSpec::default()
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "Lease released"),
            Err(error) => {
                tracing::warn!(lease = %self.config.name, %error, "cannot release the Lease; it expires on its own");
            }
        }
    }

    /// One try: takes the Lease if it is free (absent, empty, or not renewed by its holder
    /// for its duration), renews it if this host holds it. `Ok(false)` when another holds it
    /// or won the race.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = self.config.identity.clone();
        let duration_seconds =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            let mut lease = Lease::default();
            lease.metadata.name = Some(self.config.name.clone());
            lease.metadata.namespace = Some(self.config.namespace.clone());
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(me.clone()),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            });
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        self.observe(&lease);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let held_by_me = holder.as_deref() == Some(me.as_str());
        if let (Some(_), false) = (&holder, held_by_me)
            && let Some(seen) = &self.observed
            && seen.at.elapsed() < seen.duration
        {
            return Ok(false);
        }
        let mut updated = lease;
        updated.spec = Some(LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            acquire_time: if held_by_me {
                spec.acquire_time
            } else {
                Some(MicroTime(now))
            },
            lease_transitions: if held_by_me {
                spec.lease_transitions
            } else {
                Some(spec.lease_transitions.unwrap_or(0) + 1)
            },
            ..spec
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &updated)
            .await
        {
            Ok(replaced) => {
                self.observe(&replaced);
                Ok(true)
            }
            // Someone else wrote it first: they won this round.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Remembers the Lease's record, and when it last changed by this host's clock.
    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|holder| !holder.is_empty());
        let renew_time = spec.renew_time.map(|time| time.0);
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        let changed = self.observed.as_ref().is_none_or(|seen| {
            seen.holder != holder || seen.renew_time != renew_time || seen.duration != duration
        });
        if changed {
            self.observed = Some(Observed {
                holder,
                renew_time,
                duration,
                at: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_hostname_and_a_version_4_uuid() {
        let identity = default_identity();
        let (_, uuid) = identity.rsplit_once('_').expect("host_uuid");
        assert_eq!(uuid.len(), 36, "{uuid}");
        assert_eq!(&uuid[14..15], "4", "{uuid}");
        assert_ne!(default_identity(), identity);
    }
}
