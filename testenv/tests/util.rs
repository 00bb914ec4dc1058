//! Helpers shared by the test modules.

use std::{ffi::OsString, path::Path, time::Duration};

/// Whether a process with this id exists (Linux: `/proc/<pid>`). Reaped children are gone.
pub fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// An environment with only the given variables.
pub fn env_of(
    vars: &[(&str, &Path)],
) -> impl Fn(&str) -> Option<OsString> + Send + Sync + 'static + use<> {
    let vars: Vec<(String, OsString)> = vars
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_os_str().to_owned()))
        .collect();
    move |name| {
        vars.iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
    }
}

/// Polls `check` every 100 ms until it returns true, for at most `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
