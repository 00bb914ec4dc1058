//! A real, throwaway Kubernetes control plane for tests: etcd and kube-apiserver (and, if asked,
//! kube-controller-manager) on loopback, with a fresh PKI per run, in the spirit of
//! controller-runtime's envtest.
//!
//! [`TestEnv::start`] (or [`TestEnv::builder`]) returns a guard; [`TestEnv::client`] talks to the
//! API server as a cluster admin, [`TestEnv::kubeconfig_path`] and [`TestEnv::kubectl`] do the
//! same for kubectl, and [`TestEnv::config_for_token`] / [`TestEnv::config_for_user`] build
//! configurations for less powerful identities (for RBAC tests). Dropping the guard tears it all
//! down.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::{Api, api::PostParams};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let env = testenv::TestEnv::start().await?;
//! let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "default");
//! let mut config_map = ConfigMap::default();
//! config_map.metadata.name = Some("demo".into());
//! config_maps.create(&PostParams::default(), &config_map).await?;
//!
//! let output = env.kubectl()?.args(["get", "configmap", "demo"]).output()?;
//! assert!(output.status.success());
//! # Ok(())
//! # }
//! ```
//!
//! # Finding the binaries
//!
//! Like envtest, for each binary (see [`find_binary`]): `TEST_ASSET_KUBE_APISERVER`,
//! `TEST_ASSET_ETCD`, `TEST_ASSET_KUBECTL`, `TEST_ASSET_KUBE_CONTROLLER_MANAGER` (a file), then
//! `KUBEBUILDER_ASSETS` (a directory), then the cache that `cargo xtask control-plane` fills
//! (`~/.cache/wasm-reconciler/control-plane/k8s-v1.34.4-etcd-v3.6.16/`). A missing binary is
//! an [`Error::BinaryNotFound`] whose message says how to get it.
//!
//! `USE_EXISTING_CLUSTER=true` starts nothing and uses the cluster of the current kubeconfig
//! instead (the files in `KUBECONFIG`, else `kube::Config::infer`: `~/.kube/config`, then
//! in-cluster).
//!
//! # Guarantees
//!
//! - Every `TestEnv` is a control plane of its own: own processes, ports, PKI and data
//!   directory. Tests in one binary, and several test binaries, can run at the same time.
//! - When `start` returns, kube-apiserver answers `/readyz` with `ok` (all post-start hooks,
//!   including RBAC bootstrap, are done). With the controller manager, its controllers run (the
//!   `default` ServiceAccount of namespace `default` exists).
//! - `--authorization-mode=RBAC`: [`TestEnv::client`] authenticates with a client certificate
//!   for `CN=admin, O=system:masters` and may do anything; other identities only get what RBAC
//!   grants them.
//! - Dropping the guard, also while a test panics, kills the processes (SIGKILL), waits until
//!   they are reaped, and removes the data directory. [`TestEnv::stop`] does the same and
//!   reports failures instead of printing them.
//! - Nothing is skipped silently: a missing binary or a failed start is an [`Error`], quoting
//!   the end of the relevant log.
//!
//! # Caveats
//!
//! - Ports are found by binding port 0 on 127.0.0.1 and releasing it, so another process can
//!   take one before etcd or kube-apiserver binds it. The start is then retried with new ports,
//!   three attempts in all.
//! - Cleanup needs `Drop` to run. If the test process is killed with SIGKILL or aborts (e.g.
//!   `panic = "abort"`), etcd and kube-apiserver outlive it, and their `$TMPDIR/testenv-*`
//!   directory stays. Ctrl-C reaches them as well, as they share the terminal's process group.
//! - Startup takes a few seconds (about 2.5 s on a 2-core machine, see `docs/testenv.md`) and
//!   stopping well under a second; the default start timeout is 20 s. Many control planes
//!   starting at once on a small machine can need more: [`Builder::start_timeout`].
//! - There are no nodes, no kubelet and no scheduler: Pods are stored, never run. Without the
//!   controller manager, nothing garbage-collects dependents of deleted owners and a deleted
//!   namespace stays `Terminating`. The `ServiceAccount` admission plugin is disabled (as in
//!   envtest), so Pods can be created in namespaces that have no `default` ServiceAccount.
//! - The server is Kubernetes v1.34; the API version the client is compiled for is the
//!   `k8s-openapi` feature chosen by the crate that runs the tests (this crate sets none).
//! - With `USE_EXISTING_CLUSTER=true`, cleanup of what the tests created is up to the tests, and
//!   [`TestEnv::ca_pem`] may be `None`.

mod binaries;
mod error;
mod kubeconfig;
mod pki;
mod process;

use std::{
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use kube::Client;

pub use crate::{
    binaries::{Binary, find_binary, xtask_cache_dir},
    error::Error,
};
use crate::{pki::Pki, process::Process};

/// How many times a start is tried when a port turned out to be taken.
const START_ATTEMPTS: u32 = 3;
/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The upper bound of one readiness request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads an environment variable; see [`Builder::env`].
type EnvLookup = Arc<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// A running control plane (or, with `USE_EXISTING_CLUSTER=true`, a handle on an existing
/// cluster). Stops it and removes its data when dropped; see the [crate docs](crate).
pub struct TestEnv {
    config: kube::Config,
    client: Client,
    kubeconfig_path: PathBuf,
    ca_pem: Option<String>,
    data_dir_path: PathBuf,
    /// In start order: etcd, kube-apiserver, kube-controller-manager.
    processes: Vec<Process>,
    /// How kube-apiserver was started, to start it again the same way.
    apiserver: Option<(PathBuf, Vec<OsString>)>,
    data_dir: Option<tempfile::TempDir>,
    stop_timeout: Duration,
    existing_cluster: bool,
    env: EnvLookup,
}

/// Configures a [`TestEnv`] before starting it; from [`TestEnv::builder`].
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct Builder {
    start_timeout: Duration,
    stop_timeout: Duration,
    controller_manager: bool,
    apiserver_args: Vec<String>,
    env: EnvLookup,
}

impl TestEnv {
    /// Starts a control plane with the default settings: `TestEnv::builder().start()`.
    ///
    /// # Errors
    ///
    /// See [`Builder::start`].
    pub async fn start() -> Result<TestEnv, Error> {
        TestEnv::builder().start().await
    }

    /// A builder for a control plane with non-default settings.
    pub fn builder() -> Builder {
        Builder {
            start_timeout: DEFAULT_TIMEOUT,
            stop_timeout: DEFAULT_TIMEOUT,
            controller_manager: false,
            apiserver_args: Vec::new(),
            env: Arc::new(|name| std::env::var_os(name)),
        }
    }

    /// A client with cluster-admin rights (`system:masters`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The configuration behind [`TestEnv::client`]: server, CA and admin credentials.
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// A kubeconfig file for the admin identity, e.g. for `kubectl --kubeconfig`. It lives in
    /// the data directory and goes away with the `TestEnv`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `kubectl --kubeconfig <kubeconfig_path>`, ready for more arguments. For async code,
    /// convert it with `tokio::process::Command::from`.
    ///
    /// # Errors
    ///
    /// If kubectl is not found (see [`find_binary`]).
    pub fn kubectl(&self) -> Result<std::process::Command, Error> {
        let binary = find_binary(Binary::Kubectl, &*self.env)?;
        let mut command = std::process::Command::new(binary);
        command.arg("--kubeconfig").arg(&self.kubeconfig_path);
        Ok(command)
    }

    /// The API server's URL, e.g. `https://127.0.0.1:41237/`.
    pub fn apiserver_url(&self) -> &http::Uri {
        &self.config.cluster_url
    }

    /// The PEM of the CA that signed the API server's certificate (and the admin's). `None` only
    /// with `USE_EXISTING_CLUSTER=true` when the kubeconfig names no CA.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A configuration for the same server that authenticates with a bearer `token` only, e.g.
    /// a ServiceAccount token from the TokenRequest API. Build a client with
    /// `kube::Client::try_from(config)`, or a kubeconfig with [`TestEnv::write_kubeconfig`].
    pub fn config_for_token(&self, token: &str) -> kube::Config {
        kubeconfig::with_token(&self.config, token)
    }

    /// A configuration that acts as `user` in `groups` by impersonation: requests authenticate
    /// as the admin, and are authorized (RBAC) as `user` with `groups` plus
    /// `system:authenticated`. The kubeconfig written from it sets `as`/`as-groups`, so kubectl
    /// impersonates too.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentity`] if a name cannot be sent in an HTTP header.
    pub fn config_for_user(&self, user: &str, groups: &[&str]) -> Result<kube::Config, Error> {
        kubeconfig::impersonating(&self.config, user, groups)
            .map_err(|_| Error::InvalidIdentity(user.to_owned()))
    }

    /// Writes a kubeconfig (JSON, which kubectl reads like YAML) equivalent to `config` to `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be written.
    pub fn write_kubeconfig(&self, config: &kube::Config, path: &Path) -> Result<(), Error> {
        kubeconfig::write_kubeconfig(config, path)
    }

    /// The unique directory holding etcd's data, the PKI, the kubeconfig and the logs
    /// (`etcd.log`, `kube-apiserver.log`, `kube-controller-manager.log`). Removed on drop.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir_path
    }

    /// Takes the API server away for `down`, as an outage looks to its clients: kills
    /// kube-apiserver (connections are refused), waits, and starts it again with the same
    /// port, certificates and etcd data. Returns once it is ready again.
    ///
    /// # Errors
    ///
    /// [`Error::ExistingClusterUnsupported`] with `USE_EXISTING_CLUSTER=true`; otherwise as
    /// for [`Builder::start`] if the API server does not come back.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<(), Error> {
        let unsupported = || Error::ExistingClusterUnsupported("restarting the API server");
        let (binary, args) = self.apiserver.clone().ok_or_else(unsupported)?;
        let index = self
            .processes
            .iter()
            .position(|process| process.name() == "kube-apiserver")
            .ok_or_else(unsupported)?;
        let process = &mut self.processes[index];
        process.kill();
        process.wait(Instant::now() + self.stop_timeout, self.stop_timeout)?;
        tokio::time::sleep(down).await;
        self.processes[index] =
            Process::spawn("kube-apiserver", &binary, args, &self.data_dir_path)?;
        let mut probe_config = self.config.clone();
        probe_config.default_retry = false;
        let probe = Client::try_from(probe_config).map_err(Error::Client)?;
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        wait_until_ready(self, &probe, "/readyz", deadline, DEFAULT_TIMEOUT)
            .await
            .map_err(|attempt| match attempt {
                Attempt::Failed(error) => error,
                Attempt::PortInUse { process, tail } => Error::PortsInUse {
                    process,
                    attempts: 1,
                    tail,
                },
            })
    }

    /// The process ids of etcd, kube-apiserver and (if started) kube-controller-manager, in
    /// that order; empty with `USE_EXISTING_CLUSTER=true`.
    pub fn process_ids(&self) -> Vec<u32> {
        self.processes.iter().map(Process::pid).collect()
    }

    /// Checks that every process of the control plane is still running, for a caller that
    /// keeps it up for long (a development cluster) and must notice when one dies.
    ///
    /// # Errors
    ///
    /// [`Error::Died`] for the first process that has exited, quoting the end of its log.
    pub fn check_running(&mut self) -> Result<(), Error> {
        for process in &mut self.processes {
            if let Some(status) = process.exited() {
                return Err(process.died_error(status));
            }
        }
        Ok(())
    }

    /// Whether this is `USE_EXISTING_CLUSTER=true` rather than a local control plane.
    pub fn is_existing_cluster(&self) -> bool {
        self.existing_cluster
    }

    /// Stops the control plane like dropping it does, but returns what went wrong instead of
    /// printing it.
    ///
    /// # Errors
    ///
    /// [`Error::StopTimeout`] if a process was not reaped within the stop timeout,
    /// [`Error::Io`] if the data directory could not be removed (the first error wins; cleanup
    /// goes on after it).
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let mut first_error = None;
        // Kill all first, then reap: the processes die in parallel.
        for process in &mut self.processes {
            process.kill();
        }
        let deadline = Instant::now() + self.stop_timeout;
        for process in self.processes.iter_mut().rev() {
            if let Err(err) = process.wait(deadline, self.stop_timeout) {
                first_error.get_or_insert(err);
            }
        }
        self.processes.clear();
        if let Some(dir) = self.data_dir.take() {
            let path = dir.path().to_owned();
            if let Err(source) = dir.close() {
                first_error.get_or_insert(Error::Io {
                    what: "failed to remove the data directory",
                    path,
                    source,
                });
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), "control plane stopped");
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            // Drop cannot fail; the test output is the one place someone will look.
            eprintln!("testenv: cleanup failed: {err}");
        }
    }
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnv")
            .field("apiserver_url", &self.config.cluster_url)
            .field("data_dir", &self.data_dir_path)
            .field("process_ids", &self.process_ids())
            .field("existing_cluster", &self.existing_cluster)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// How long [`Builder::start`] waits for the control plane to become ready, per attempt.
    /// Default 20 s.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long stopping waits for the killed processes to be reaped. Default 20 s; SIGKILLed
    /// processes are normally gone in milliseconds.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Also runs kube-controller-manager with the controllers `garbagecollector` (owner
    /// references), `namespace` (namespace deletion), `serviceaccount` and
    /// `serviceaccount-token`. Default off.
    ///
    /// ## Warning
    ///
    /// Costs a little more startup (its controllers must be running before `start` returns;
    /// about +0.2 s measured), memory (~85 MB resident, next to ~270 MB for kube-apiserver and
    /// ~40 MB for etcd) and a `cargo xtask control-plane --with-controller-manager` build
    /// (about a minute once the others are built).
    pub fn with_controller_manager(mut self, enabled: bool) -> Self {
        self.controller_manager = enabled;
        self
    }

    /// Adds a kube-apiserver flag, e.g. `--feature-gates=...`; it comes after the defaults and
    /// so overrides a default flag of the same name.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }

    /// Replaces how environment variables are read (`TEST_ASSET_*`, `KUBEBUILDER_ASSETS`,
    /// `XDG_CACHE_HOME`, `HOME`, `USE_EXISTING_CLUSTER` and with it `KUBECONFIG`); by default,
    /// from the process environment. Lets a test pin binaries without changing the process
    /// environment.
    pub fn env(
        mut self,
        lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Starts the control plane and waits until it is ready.
    ///
    /// # Errors
    ///
    /// [`Error::BinaryNotFound`]/[`Error::NotExecutable`] before anything starts;
    /// [`Error::Exited`], [`Error::PortsInUse`] or [`Error::StartTimeout`] (with the end of the
    /// relevant log) if it does not come up; [`Error::ExistingCluster`] or
    /// [`Error::Kubeconfig`] if `USE_EXISTING_CLUSTER=true` and no usable cluster is configured. Whatever was started is
    /// stopped and removed before the error is returned.
    pub async fn start(self) -> Result<TestEnv, Error> {
        let use_existing = (self.env)("USE_EXISTING_CLUSTER")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if use_existing {
            return self.use_existing_cluster().await;
        }

        let binaries = Binaries::find(&self)?;
        let mut attempt = 1;
        loop {
            match self.start_local(&binaries).await {
                Ok(env) => return Ok(env),
                Err(Attempt::PortInUse { process, tail }) => {
                    if attempt == START_ATTEMPTS {
                        return Err(Error::PortsInUse {
                            process,
                            attempts: attempt,
                            tail,
                        });
                    }
                    tracing::debug!(process, attempt, "port taken, starting again");
                    attempt += 1;
                }
                Err(Attempt::Failed(err)) => return Err(err),
            }
        }
    }

    async fn start_local(&self, binaries: &Binaries) -> Result<TestEnv, Attempt> {
        let started = Instant::now();
        let deadline = started + self.start_timeout;
        let data_dir = new_data_dir()?;
        let dir = data_dir.path().to_owned();
        let pki = Pki::generate().map_err(Error::Pki)?;
        let files = write_pki(&dir, &pki)?;
        let [etcd_port, etcd_peer_port, apiserver_port] =
            process::free_ports().map_err(|source| Error::Io {
                what: "failed to find free ports",
                path: PathBuf::from("127.0.0.1"),
                source,
            })?;

        let server = format!("https://127.0.0.1:{apiserver_port}");
        // Built here from a constant host and a u16: always a valid URI.
        let url = server
            .parse()
            .expect("https://127.0.0.1:<port> is a valid URI");
        let mut config = kube::Config::new(url);
        config.root_cert = Some(vec![pki.ca_cert_der.clone()]);
        config.auth_info.client_certificate_data = Some(base64_encode(&pki.admin_cert_pem));
        config.auth_info.client_key_data = Some(base64_encode(&pki.admin_key_pem).into());
        let client = Client::try_from(config.clone()).map_err(Error::Client)?;
        // Polls must not be retried or queued behind each other: a separate client without retries.
        let mut probe_config = config.clone();
        probe_config.default_retry = false;
        let probe = Client::try_from(probe_config).map_err(Error::Client)?;
        let kubeconfig_path = dir.join("kubeconfig");
        kubeconfig::write_kubeconfig(&config, &kubeconfig_path)?;

        // From here on, the guard cleans up whatever has been started if anything fails.
        let mut env = TestEnv {
            config,
            client,
            kubeconfig_path,
            ca_pem: Some(pki.ca_cert_pem.clone()),
            data_dir_path: dir.clone(),
            processes: Vec::new(),
            apiserver: None,
            data_dir: Some(data_dir),
            stop_timeout: self.stop_timeout,
            existing_cluster: false,
            env: self.env.clone(),
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let etcd_args = [
            "--name=testenv".to_owned(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={etcd_peer_url}"),
            format!("--initial-advertise-peer-urls={etcd_peer_url}"),
            format!("--initial-cluster=testenv={etcd_peer_url}"),
            // Throwaway data: durability buys nothing and fsync costs a lot.
            "--unsafe-no-fsync".to_owned(),
        ];
        env.processes.push(Process::spawn(
            "etcd",
            &binaries.etcd,
            os_args(etcd_args),
            &dir,
        )?);

        // kube-apiserver retries etcd until it answers, so both start at once.
        let mut apiserver_args = vec![
            "--advertise-address=127.0.0.1".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--secure-port={apiserver_port}"),
            format!("--cert-dir={}", dir.join("pki").display()),
            format!("--tls-cert-file={}", files.serving_cert.display()),
            format!("--tls-private-key-file={}", files.serving_key.display()),
            format!("--client-ca-file={}", files.ca_cert.display()),
            format!("--etcd-servers={etcd_url}"),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            format!("--service-account-issuer={server}"),
            format!(
                "--service-account-key-file={}",
                files.service_account_public_key.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                files.service_account_key.display()
            ),
            "--authorization-mode=RBAC".to_owned(),
            "--allow-privileged=true".to_owned(),
            // As in envtest: without the controller manager no namespace has a `default`
            // ServiceAccount, and the plugin would reject every Pod.
            "--disable-admission-plugins=ServiceAccount".to_owned(),
            "--profiling=false".to_owned(),
        ];
        apiserver_args.extend(self.apiserver_args.iter().cloned());
        let apiserver_args = os_args(apiserver_args);
        env.processes.push(Process::spawn(
            "kube-apiserver",
            &binaries.apiserver,
            apiserver_args.clone(),
            &dir,
        )?);
        env.apiserver = Some((binaries.apiserver.clone(), apiserver_args));
        wait_until_ready(&mut env, &probe, "/readyz", deadline, self.start_timeout).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "kube-apiserver ready");

        if let Some(controller_manager) = &binaries.controller_manager {
            let args = [
                format!("--kubeconfig={}", env.kubeconfig_path.display()),
                "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token"
                    .to_owned(),
                format!(
                    "--service-account-private-key-file={}",
                    files.service_account_key.display()
                ),
                format!("--root-ca-file={}", files.ca_cert.display()),
                "--use-service-account-credentials=false".to_owned(),
                "--leader-elect=false".to_owned(),
                // No HTTPS endpoint: nothing scrapes it, and a fixed port would clash.
                "--secure-port=0".to_owned(),
                "--profiling=false".to_owned(),
            ];
            env.processes.push(Process::spawn(
                "kube-controller-manager",
                controller_manager,
                os_args(args),
                &dir,
            )?);
            // The serviceaccount controller creates this once the controllers run.
            let ready = "/api/v1/namespaces/default/serviceaccounts/default";
            wait_until_ready(&mut env, &probe, ready, deadline, self.start_timeout).await?;
            tracing::debug!(elapsed = ?started.elapsed(), "kube-controller-manager ready");
        }
        Ok(env)
    }

    async fn use_existing_cluster(self) -> Result<TestEnv, Error> {
        // KUBECONFIG is read through the lookup like every other variable; without it, kube's
        // usual inference (~/.kube/config, then in-cluster).
        let config = match (self.env)("KUBECONFIG").filter(|paths| !paths.is_empty()) {
            Some(paths) => {
                let kubeconfig = kubeconfig::read_merged(&paths)?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|source| Error::Kubeconfig {
                        path: PathBuf::from(paths),
                        source,
                    })?
            }
            None => kube::Config::infer()
                .await
                .map_err(Error::ExistingCluster)?,
        };
        let client = Client::try_from(config.clone()).map_err(Error::Client)?;
        let data_dir = new_data_dir()?;
        let kubeconfig_path = data_dir.path().join("kubeconfig");
        kubeconfig::write_kubeconfig(&config, &kubeconfig_path)?;
        let ca_pem = config.root_cert.as_ref().map(|certs| {
            certs
                .iter()
                .map(|der| kubeconfig::der_to_pem(der))
                .collect()
        });
        Ok(TestEnv {
            config,
            client,
            kubeconfig_path,
            ca_pem,
            data_dir_path: data_dir.path().to_owned(),
            processes: Vec::new(),
            apiserver: None,
            data_dir: Some(data_dir),
            stop_timeout: self.stop_timeout,
            existing_cluster: true,
            env: self.env,
        })
    }
}

/// Why one start attempt failed: worth retrying (a port was taken) or not.
enum Attempt {
    PortInUse { process: &'static str, tail: String },
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(err: Error) -> Self {
        Attempt::Failed(err)
    }
}

struct Binaries {
    apiserver: PathBuf,
    etcd: PathBuf,
    controller_manager: Option<PathBuf>,
}

impl Binaries {
    fn find(builder: &Builder) -> Result<Binaries, Error> {
        let env = &*builder.env;
        Ok(Binaries {
            apiserver: find_binary(Binary::KubeApiserver, env)?,
            etcd: find_binary(Binary::Etcd, env)?,
            controller_manager: builder
                .controller_manager
                .then(|| find_binary(Binary::KubeControllerManager, env))
                .transpose()?,
        })
    }
}

/// Polls `path` with the admin identity until it answers 2xx, failing early if a process exits.
/// The last started process is the one awaited, and the one whose log a timeout quotes.
async fn wait_until_ready(
    env: &mut TestEnv,
    probe: &Client,
    path: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), Attempt> {
    loop {
        for process in &mut env.processes {
            if let Some(status) = process.exited() {
                return Err(if process.failed_to_bind() {
                    Attempt::PortInUse {
                        process: process.name(),
                        tail: process.log_tail(),
                    }
                } else {
                    Attempt::Failed(process.exited_error(status))
                });
            }
        }
        let request = http::Request::get(path).body(Vec::new());
        let last_error = match request {
            Ok(request) => {
                match tokio::time::timeout(PROBE_TIMEOUT, probe.request_text(request)).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(err)) => err.to_string(),
                    Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
                }
            }
            Err(err) => err.to_string(),
        };
        if Instant::now() >= deadline {
            let (waiting_for, log, tail) = match env.processes.last() {
                Some(process) => (process.name(), process.log().to_owned(), process.log_tail()),
                None => ("control plane", PathBuf::new(), String::new()),
            };
            return Err(Attempt::Failed(Error::StartTimeout {
                waiting_for,
                timeout,
                last_error,
                log,
                tail,
            }));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

struct PkiFiles {
    ca_cert: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    service_account_key: PathBuf,
    service_account_public_key: PathBuf,
}

fn write_pki(dir: &Path, pki: &Pki) -> Result<PkiFiles, Error> {
    let pki_dir = dir.join("pki");
    let write = |name: &str, contents: &str| {
        let path = pki_dir.join(name);
        std::fs::write(&path, contents)
            .map(|()| path.clone())
            .map_err(|source| Error::Io {
                what: "failed to write a certificate or key",
                path,
                source,
            })
    };
    std::fs::create_dir(&pki_dir).map_err(|source| Error::Io {
        what: "failed to create the PKI directory",
        path: pki_dir.clone(),
        source,
    })?;
    Ok(PkiFiles {
        ca_cert: write("ca.crt", &pki.ca_cert_pem)?,
        serving_cert: write("apiserver.crt", &pki.serving_cert_pem)?,
        serving_key: write("apiserver.key", &pki.serving_key_pem)?,
        service_account_key: write("sa.key", &pki.service_account_key_pem)?,
        service_account_public_key: write("sa.pub", &pki.service_account_public_key_pem)?,
    })
}

fn os_args(args: impl IntoIterator<Item = String>) -> Vec<OsString> {
    args.into_iter().map(OsString::from).collect()
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A fresh `$TMPDIR/testenv-*` directory, removed when dropped.
fn new_data_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("testenv-")
        .tempdir()
        .map_err(|source| Error::Io {
            what: "failed to create the data directory",
            path: std::env::temp_dir(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_env_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TestEnv>();
        assert_send_sync::<Builder>();
    }
}
