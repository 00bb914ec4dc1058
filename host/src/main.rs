//! The `wasm-reconciler` binary: parse arguments, connect to the cluster, run the host.

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wasm_reconciler::{Cli, Command, check, compile_stdin_to_stdout};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { command } = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if matches!(command, Command::Run(_)) {
        tracing_subscriber::fmt()
            // Colours only on a terminal: a pod's log is a file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_env_filter(filter)
            .init();
    } else {
        // The other commands print their results on stdout: logs go to stderr.
        tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
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
            args.host().run(client, shutdown_signal()).await?;
        }
        Command::Compile(args) => compile_stdin_to_stdout(&args.sandbox())?,
        Command::Check(args) => {
            if !check(&args).await? {
                anyhow::bail!("some plugins are invalid");
            }
        }
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
