//! Finding binaries: the search order and the errors, with explicit environments (the process
//! environment is never changed).

use std::path::PathBuf;

use testenv::{Binary, Error, TestEnv, find_binary, xtask_cache_dir};

use crate::util::env_of;

fn fake_binary(dir: &std::path::Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn missing_binary_error_names_the_variable_and_the_command() {
    let home = tempfile::tempdir().unwrap();
    let err = find_binary(Binary::KubeApiserver, env_of(&[("HOME", home.path())])).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "kube-apiserver not found: set TEST_ASSET_KUBE_APISERVER or KUBEBUILDER_ASSETS, \
             or run `cargo xtask control-plane`"
        ),
        "{message}"
    );
    // It also says where it looked.
    let cache = xtask_cache_dir(env_of(&[("HOME", home.path())])).unwrap();
    assert!(
        message.contains(&cache.join("kube-apiserver").display().to_string()),
        "{message}"
    );
}

#[test]
fn missing_controller_manager_names_the_flag_that_builds_it() {
    let err = find_binary(Binary::KubeControllerManager, |_| None).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("TEST_ASSET_KUBE_CONTROLLER_MANAGER"),
        "{message}"
    );
    assert!(
        message.contains("`cargo xtask control-plane --with-controller-manager`"),
        "{message}"
    );
}

#[test]
fn a_wrong_test_asset_variable_is_an_error_not_a_fallback() {
    let assets = tempfile::tempdir().unwrap();
    fake_binary(assets.path(), "etcd");
    let missing = assets.path().join("no-such-etcd");
    let err = find_binary(
        Binary::Etcd,
        env_of(&[
            ("TEST_ASSET_ETCD", &missing),
            ("KUBEBUILDER_ASSETS", assets.path()),
        ]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotExecutable {
                var: "TEST_ASSET_ETCD",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("TEST_ASSET_ETCD="), "{err}");
}

#[test]
fn search_order_is_test_asset_then_kubebuilder_assets_then_cache() {
    let explicit = tempfile::tempdir().unwrap();
    let assets = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cache = xtask_cache_dir(env_of(&[("HOME", home.path())])).unwrap();
    std::fs::create_dir_all(&cache).unwrap();

    let in_cache = fake_binary(&cache, "kubectl");
    let env = env_of(&[("HOME", home.path())]);
    assert_eq!(find_binary(Binary::Kubectl, env).unwrap(), in_cache);

    let in_assets = fake_binary(assets.path(), "kubectl");
    let env = env_of(&[("HOME", home.path()), ("KUBEBUILDER_ASSETS", assets.path())]);
    assert_eq!(find_binary(Binary::Kubectl, env).unwrap(), in_assets);

    let pinned = fake_binary(explicit.path(), "my-kubectl");
    let env = env_of(&[
        ("HOME", home.path()),
        ("KUBEBUILDER_ASSETS", assets.path()),
        ("TEST_ASSET_KUBECTL", &pinned),
    ]);
    assert_eq!(find_binary(Binary::Kubectl, env).unwrap(), pinned);
}

#[test]
fn non_executable_files_are_not_binaries() {
    let assets = tempfile::tempdir().unwrap();
    std::fs::write(assets.path().join("etcd"), "not executable").unwrap();
    let err = find_binary(
        Binary::Etcd,
        env_of(&[("KUBEBUILDER_ASSETS", assets.path())]),
    );
    assert!(matches!(err, Err(Error::BinaryNotFound { .. })), "{err:?}");
}

#[test]
fn cache_dir_prefers_an_absolute_xdg_cache_home() {
    let xdg = PathBuf::from("/xdg");
    let home = PathBuf::from("/home/me");
    let dir = xtask_cache_dir(env_of(&[("XDG_CACHE_HOME", &xdg), ("HOME", &home)])).unwrap();
    assert!(
        dir.starts_with("/xdg/wasm-reconciler/control-plane/"),
        "{}",
        dir.display()
    );
    let relative = PathBuf::from("relative");
    let dir = xtask_cache_dir(env_of(&[("XDG_CACHE_HOME", &relative), ("HOME", &home)])).unwrap();
    assert!(
        dir.starts_with("/home/me/.cache/wasm-reconciler/control-plane/"),
        "{}",
        dir.display()
    );
    assert!(
        dir.ends_with("k8s-v1.34.4-etcd-v3.6.16"),
        "{}",
        dir.display()
    );
    assert_eq!(xtask_cache_dir(|_| None), None);
}

#[tokio::test]
async fn start_without_binaries_fails_and_says_how_to_get_them() {
    let err = TestEnv::builder().env(|_| None).start().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BinaryNotFound {
                binary: Binary::KubeApiserver,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("cargo xtask control-plane"),
        "{err}"
    );
}
