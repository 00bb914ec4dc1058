//! The `wasm-reconciler` binary: parse arguments, connect to the cluster, run the host.

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use wasm_reconciler::{Cli, Command, check, compile_stdin_to_stdout, reconcile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    // `run` logs to stdout, as a pod's log; the other commands print their results there,
    // so they log to stderr.
    let (writer, terminal) = if matches!(command, Command::Run(_)) {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        (BoxMakeWriter::new(std::io::stdout), terminal)
    } else {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        (BoxMakeWriter::new(std::io::stderr), terminal)
    };
    tracing_subscriber::fmt()
        // Colours only on a terminal: a pod's log is a file.
        .with_ansi(terminal)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(writer)
        .init();
    match command {
        Command::Run(args) => {
            let config = match &args.kubeconfig {
                Some(path) => {
                    let kubeconfig = kube::config::Kubeconfig::read_from(path)
                        .with_context(|| format!("failed to read kubeconfig {}", path.display()))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                        .await
                        .context("invalid kubeconfig")?
                }
                None => kube::Config::infer()
                    .await
                    .context("no kubeconfig and not running in a cluster")?,
            };
            let client = kube::Client::try_from(config).context("failed to build the client")?;
            let mut host = args.host();
            if let Some(election) = args.leader_election()? {
                host = host.leader_election(election);
            }
            host.run(client, shutdown_signal()).await?;
        }
        Command::Compile(args) => compile_stdin_to_stdout(&args.sandbox())?,
        Command::Check(args) => {
            if !check(&args).await? {
                anyhow::bail!("some plugins are invalid");
            }
        }
        Command::Reconcile(args) => print!("{}", reconcile(&args).await?),
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM (what Kubernetes sends a pod being stopped).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the host");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
