//! `wasm-reconciler check`: loads plugins offline (no cluster) and says what each declares,
//! the API permissions the host needs to run it, and, on request, that RBAC as YAML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kube::api::{ApiResource, GroupVersionKind};

use crate::manager::error_chain;
use crate::plugin::{self, Compiler, Plugin, Sandbox, SandboxConfig};

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Plugin files (`*.wasm`).
    #[arg(required = true, value_name = "PLUGIN")]
    pub plugins: Vec<PathBuf>,

    /// Also print the ClusterRole and ClusterRoleBinding the host needs for each plugin.
    #[arg(long)]
    pub rbac: bool,

    /// The host's ServiceAccount, for `--rbac`.
    #[arg(long, default_value = "wasm-reconciler", value_name = "NAME")]
    pub service_account: String,

    /// The host's namespace, for `--rbac`.
    #[arg(long, default_value = "wasm-reconciler", value_name = "NAMESPACE")]
    pub namespace: String,
}

/// One RBAC rule: verbs on one resource (or subresource) of one API group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) group: String,
    pub(crate) resource: String,
    pub(crate) verbs: &'static [&'static str],
    /// Why the host needs it, for the YAML's comment.
    pub(crate) why: &'static str,
}

/// What the host does with a plugin's kinds, as RBAC rules, in the order the host uses them.
/// Plural names follow Kubernetes' convention (kube's `ApiResource::from_gvk`); a CRD with
/// an irregular plural needs its rules adjusted.
pub(crate) fn rules(metadata: &plugin::Metadata) -> Vec<Rule> {
    let rule = |gvk: &GroupVersionKind, subresource: &str, verbs, why| Rule {
        group: gvk.group.clone(),
        resource: format!("{}{subresource}", ApiResource::from_gvk(gvk).plural),
        verbs,
        why,
    };
    let reconciled = &metadata.reconciles;
    let v0_2 = metadata.contract >= plugin::Contract::V0_2;
    let mut rules = vec![
        if metadata.finalizer.is_some() {
            rule(
                reconciled,
                "",
                &["get", "list", "watch", "patch"],
                "the reconciled kind: watched into the host's cache; the plugin's finalizer added and removed by JSON patch",
            )
        } else {
            rule(
                reconciled,
                "",
                &["get", "list", "watch"],
                "the reconciled kind: watched into the host's cache",
            )
        },
        rule(
            reconciled,
            "/status",
            &["patch"],
            "status writes: merge patches of the status subresource",
        ),
        rule(
            reconciled,
            "/finalizers",
            &["update"],
            "blockOwnerDeletion on owner references (OwnerReferencesPermissionEnforcement)",
        ),
    ];
    for owned in &metadata.owns {
        rules.push(if v0_2 {
            rule(
                owned,
                "",
                &["get", "list", "watch", "create", "patch", "delete"],
                "an owned kind: watched into the host's cache, server-side applied, and deleted",
            )
        } else {
            rule(
                owned,
                "",
                &["get", "list", "watch", "create", "patch"],
                "an owned kind: watched, read, and server-side applied",
            )
        });
    }
    for read in &metadata.reads {
        rules.push(if v0_2 {
            rule(
                read,
                "",
                &["get", "list", "watch"],
                "a kind the plugin reads: watched into the host's cache",
            )
        } else {
            rule(read, "", &["get"], "a kind the plugin reads")
        });
    }
    for watch in &metadata.watches {
        rules.push(rule(
            &watch.kind,
            "",
            &["get", "list", "watch"],
            "a watched kind: watched into the host's cache, changes mapped to reconciled objects",
        ));
    }
    rules
}

/// Loads every plugin in `args` and prints what it finds; returns whether all were valid.
///
/// # Errors
///
/// Fails only if the engine cannot be created; an invalid plugin is reported and makes the
/// result `false`.
pub async fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let sandbox = Sandbox::new(SandboxConfig::default().max_instances(1))
        .map_err(|error| anyhow::anyhow!("cannot create the engine: {error:#}"))?;
    let linker = plugin::linker(&sandbox)
        .map_err(|error| anyhow::anyhow!("cannot create the linker: {error:#}"))?;
    let compiler = Compiler::uncached(&sandbox);
    let mut all_valid = true;
    for path in &args.plugins {
        match Plugin::load(&sandbox, &linker, &compiler, path).await {
            Ok(plugin) => {
                print!("{}", describe(path, &plugin));
                if args.rbac {
                    print!(
                        "{}",
                        rbac_yaml(plugin.metadata(), &args.service_account, &args.namespace)
                    );
                }
            }
            Err(error) => {
                all_valid = false;
                println!("{}: invalid: {}", path.display(), error_chain(&error));
            }
        }
    }
    Ok(all_valid)
}

/// The report of one valid plugin.
fn describe(path: &Path, plugin: &Plugin) -> String {
    let metadata = plugin.metadata();
    let kinds = |kinds: &[GroupVersionKind]| {
        if kinds.is_empty() {
            "(none)".to_owned()
        } else {
            kinds.iter().map(gvk_text).collect::<Vec<_>>().join(", ")
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(out, "  contract:   {}", plugin.contract());
    let _ = writeln!(out, "  name:       {}", metadata.name);
    let _ = writeln!(out, "  reconciles: {}", gvk_text(&metadata.reconciles));
    let _ = writeln!(out, "  owns:       {}", kinds(&metadata.owns));
    let _ = writeln!(out, "  reads:      {}", kinds(&metadata.reads));
    if metadata.contract >= plugin::Contract::V0_2 {
        let watches = if metadata.watches.is_empty() {
            "(none)".to_owned()
        } else {
            metadata
                .watches
                .iter()
                .map(|watch| {
                    let mapping = match &watch.mapping {
                        plugin::WatchMapping::OwnerReferences => "by owner references".to_owned(),
                        plugin::WatchMapping::Label(key) => format!("by label {key}"),
                        plugin::WatchMapping::SameNamespace => {
                            "every object in its namespace".to_owned()
                        }
                    };
                    format!("{} ({mapping})", gvk_text(&watch.kind))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "  watches:    {watches}");
        let selector = metadata
            .selector
            .as_ref()
            .map_or_else(|| "(all objects)".to_owned(), ToString::to_string);
        let _ = writeln!(out, "  selector:   {selector}");
        let namespaces = if metadata.namespaces.is_empty() {
            "(all)".to_owned()
        } else {
            metadata.namespaces.join(", ")
        };
        let _ = writeln!(out, "  namespaces: {namespaces}");
        let _ = writeln!(
            out,
            "  finalizer:  {}",
            metadata.finalizer.as_deref().unwrap_or("(none)")
        );
        if let Some(at_once) = metadata.max_concurrent_reconciles {
            let _ = writeln!(out, "  max concurrent reconciles: {at_once}");
        }
        if let Some(every) = metadata.resync {
            let _ = writeln!(out, "  resync every: {every:?}");
        }
    }
    let _ = writeln!(out, "  permissions the host needs:");
    for rule in rules(metadata) {
        let _ = writeln!(
            out,
            "    {} {}: {}",
            group_text(&rule.group),
            rule.resource,
            rule.verbs.join(", ")
        );
    }
    out
}

/// A ClusterRole with the plugin's [`rules`] and its binding to the host's ServiceAccount.
fn rbac_yaml(metadata: &plugin::Metadata, service_account: &str, namespace: &str) -> String {
    let name = format!("wasm-reconciler-plugin-{}", metadata.name);
    let mut out = String::new();
    let _ = writeln!(out, "---");
    let _ = writeln!(
        out,
        "# What the {} plugin declares, cluster-wide: the host watches its kinds in every namespace.",
        metadata.name
    );
    let _ = writeln!(out, "apiVersion: rbac.authorization.k8s.io/v1");
    let _ = writeln!(out, "kind: ClusterRole");
    let _ = writeln!(out, "metadata:\n  name: {name}\nrules:");
    for rule in rules(metadata) {
        let _ = writeln!(out, "  # {}", rule.why);
        let _ = writeln!(out, "  - apiGroups: [\"{}\"]", rule.group);
        let _ = writeln!(out, "    resources: [{}]", rule.resource);
        let _ = writeln!(out, "    verbs: [{}]", rule.verbs.join(", "));
    }
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "apiVersion: rbac.authorization.k8s.io/v1");
    let _ = writeln!(out, "kind: ClusterRoleBinding");
    let _ = writeln!(out, "metadata:\n  name: {name}");
    let _ = writeln!(
        out,
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {name}"
    );
    let _ = writeln!(
        out,
        "subjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {namespace}"
    );
    out
}

/// `group/version Kind`, or `version Kind` for the core group.
fn gvk_text(gvk: &GroupVersionKind) -> String {
    format!("{} {}", gvk.api_version(), gvk.kind)
}

/// The group as RBAC shows it: `""` for the core group.
fn group_text(group: &str) -> &str {
    if group.is_empty() { "\"\"" } else { group }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> plugin::Metadata {
        plugin::Metadata {
            contract: plugin::Contract::V0_1,
            name: "myresource".into(),
            reconciles: GroupVersionKind::gvk("mygroup.example.com", "v1alpha1", "MyResource"),
            owns: vec![GroupVersionKind::gvk("apps", "v1", "Deployment")],
            reads: vec![GroupVersionKind::gvk("", "v1", "ConfigMap")],
            watches: Vec::new(),
            selector: None,
            namespaces: Vec::new(),
            finalizer: None,
            max_concurrent_reconciles: None,
            resync: None,
        }
    }

    #[test]
    fn rules_cover_the_reconciled_owned_and_read_kinds() {
        let rules = rules(&metadata());
        let summary: Vec<(String, String, Vec<&str>)> = rules
            .iter()
            .map(|rule| {
                (
                    rule.group.clone(),
                    rule.resource.clone(),
                    rule.verbs.to_vec(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "mygroup.example.com".into(),
                    "myresources".into(),
                    vec!["get", "list", "watch"]
                ),
                (
                    "mygroup.example.com".into(),
                    "myresources/status".into(),
                    vec!["patch"]
                ),
                (
                    "mygroup.example.com".into(),
                    "myresources/finalizers".into(),
                    vec!["update"]
                ),
                (
                    "apps".into(),
                    "deployments".into(),
                    vec!["get", "list", "watch", "create", "patch"]
                ),
                (String::new(), "configmaps".into(), vec!["get"]),
            ]
        );
    }

    #[test]
    fn the_rbac_yaml_binds_the_role_to_the_host() {
        let yaml = rbac_yaml(&metadata(), "host", "ops");
        assert!(
            yaml.contains("name: wasm-reconciler-plugin-myresource"),
            "{yaml}"
        );
        assert!(
            yaml.contains("  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get]"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    name: host\n    namespace: ops"),
            "{yaml}"
        );
    }
}
