//! Turns a [`kube::Config`] into a kubeconfig (for `kubectl --kubeconfig`) and derives configs
//! for other identities.

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderName, HeaderValue};
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use crate::Error;

const NAME: &str = "testenv";

/// A kubeconfig with one cluster, user and context (all named `testenv`) equivalent to `config`.
///
/// Written as JSON, which kubectl and kube both read (YAML is a superset of JSON).
pub(crate) fn kubeconfig_for(config: &kube::Config) -> Kubeconfig {
    let ca_pem: Option<String> = config
        .root_cert
        .as_ref()
        .map(|certs| certs.iter().map(|der| der_to_pem(der)).collect());
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.to_owned(),
            cluster: Some(Cluster {
                server: Some(config.cluster_url.to_string()),
                certificate_authority_data: ca_pem.map(|pem| STANDARD.encode(pem)),
                insecure_skip_tls_verify: config.accept_invalid_certs.then_some(true),
                tls_server_name: config.tls_server_name.clone(),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.to_owned(),
            auth_info: Some(config.auth_info.clone()),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.to_owned(),
            context: Some(Context {
                cluster: NAME.to_owned(),
                user: Some(NAME.to_owned()),
                namespace: Some(config.default_namespace.clone()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.to_owned()),
        kind: Some("Config".to_owned()),
        api_version: Some("v1".to_owned()),
        ..Kubeconfig::default()
    }
}

/// Writes [`kubeconfig_for`]`(config)` to `path`.
pub(crate) fn write_kubeconfig(config: &kube::Config, path: &Path) -> Result<(), Error> {
    let io_error = |source| Error::Io {
        what: "failed to write a kubeconfig",
        path: path.to_owned(),
        source,
    };
    let json = serde_json::to_vec_pretty(&kubeconfig_for(config))
        .map_err(|err| io_error(std::io::Error::other(err)))?;
    std::fs::write(path, json).map_err(io_error)
}

/// Reads and merges the kubeconfig files of a `KUBECONFIG`-style path list, as kubectl does
/// (the first file to set a value wins).
pub(crate) fn read_merged(paths: &std::ffi::OsStr) -> Result<Kubeconfig, Error> {
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(paths).filter(|path| !path.as_os_str().is_empty()) {
        let error = |source| Error::Kubeconfig {
            path: path.clone(),
            source,
        };
        let next = Kubeconfig::read_from(&path).map_err(error)?;
        merged = Some(match merged {
            None => next,
            Some(merged) => merged.merge(next).map_err(error)?,
        });
    }
    Ok(merged.unwrap_or_default())
}

/// `base` with its credentials replaced by a bearer token.
pub(crate) fn with_token(base: &kube::Config, token: &str) -> kube::Config {
    let mut config = base.clone();
    config.auth_info = AuthInfo {
        token: Some(token.to_owned().into()),
        ..AuthInfo::default()
    };
    config.headers.retain(|(name, _)| !is_impersonation(name));
    config
}

/// `base` (an identity allowed to impersonate) acting as `user` in `groups`, through the
/// `Impersonate-User`/`Impersonate-Group` headers (for kube) and `as`/`as-groups` (for the
/// kubeconfig, i.e. kubectl).
pub(crate) fn impersonating(
    base: &kube::Config,
    user: &str,
    groups: &[&str],
) -> Result<kube::Config, http::header::InvalidHeaderValue> {
    let mut config = base.clone();
    config.headers.retain(|(name, _)| !is_impersonation(name));
    config.headers.push((
        HeaderName::from_static("impersonate-user"),
        HeaderValue::from_str(user)?,
    ));
    for group in groups {
        config.headers.push((
            HeaderName::from_static("impersonate-group"),
            HeaderValue::from_str(group)?,
        ));
    }
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups =
        (!groups.is_empty()).then(|| groups.iter().map(|&group| group.to_owned()).collect());
    Ok(config)
}

fn is_impersonation(name: &HeaderName) -> bool {
    name.as_str().starts_with("impersonate-")
}

/// PEM armour for one DER certificate.
pub(crate) fn der_to_pem(der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> kube::Config {
        let mut config = kube::Config::new(http::Uri::from_static("https://127.0.0.1:6443"));
        config.root_cert = Some(vec![vec![1, 2, 3]]);
        config.auth_info.client_certificate_data = Some("Y2VydA==".to_owned());
        config
    }

    #[test]
    fn kubeconfig_carries_server_ca_and_credentials() {
        let kubeconfig = kubeconfig_for(&base());
        let json = serde_json::to_value(&kubeconfig).unwrap();
        assert_eq!(json["current-context"], "testenv");
        assert_eq!(
            json["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443/"
        );
        let ca = json["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        let ca = String::from_utf8(STANDARD.decode(ca).unwrap()).unwrap();
        assert_eq!(
            ca,
            "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            json["users"][0]["user"]["client-certificate-data"],
            "Y2VydA=="
        );
    }

    #[test]
    fn token_config_drops_other_credentials() {
        let config = with_token(&base(), "abc");
        assert!(config.auth_info.client_certificate_data.is_none());
        let json = serde_json::to_value(kubeconfig_for(&config)).unwrap();
        assert_eq!(json["users"][0]["user"]["token"], "abc");
    }

    #[test]
    fn impersonation_sets_headers_and_kubeconfig_fields() {
        let config = impersonating(&base(), "jane", &["devs", "ops"]).unwrap();
        let groups: Vec<_> = config
            .headers
            .iter()
            .filter(|(name, _)| name == "impersonate-group")
            .map(|(_, value)| value.to_str().unwrap())
            .collect();
        assert_eq!(groups, ["devs", "ops"]);
        let json = serde_json::to_value(kubeconfig_for(&config)).unwrap();
        assert_eq!(json["users"][0]["user"]["as"], "jane");
        assert_eq!(json["users"][0]["user"]["as-groups"][1], "ops");
    }
}
