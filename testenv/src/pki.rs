//! The per-run PKI: a CA, the API server's serving certificate, the admin's client certificate
//! and the service-account signing key, all ECDSA P-256 and generated in memory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The first address of `--service-cluster-ip-range`, where the `kubernetes` Service points.
pub(crate) const SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// PEM-encoded material for one control plane.
pub(crate) struct Pki {
    pub(crate) ca_cert_pem: String,
    pub(crate) ca_cert_der: Vec<u8>,
    pub(crate) serving_cert_pem: String,
    pub(crate) serving_key_pem: String,
    /// CN=admin, O=system:masters: allowed everything, whatever RBAC says.
    pub(crate) admin_cert_pem: String,
    pub(crate) admin_key_pem: String,
    /// PKCS#8; the API server signs service-account tokens with it, and the controller manager
    /// signs legacy token Secrets.
    pub(crate) service_account_key_pem: String,
    pub(crate) service_account_public_key_pem: String,
}

impl Pki {
    pub(crate) fn generate() -> Result<Pki, rcgen::Error> {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn("testenv-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut serving = CertificateParams::new(vec![
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])?;
        serving.subject_alt_names.extend(
            [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(SERVICE_IP),
            ]
            .map(SanType::IpAddress),
        );
        serving.distinguished_name = dn("kube-apiserver", None);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        serving.use_authority_key_identifier_extension = true;
        let serving_key = KeyPair::generate()?;
        let serving_cert = serving.signed_by(&serving_key, &ca)?;

        let mut admin = CertificateParams::default();
        admin.distinguished_name = dn("admin", Some("system:masters"));
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        admin.use_authority_key_identifier_extension = true;
        let admin_key = KeyPair::generate()?;
        let admin_cert = admin.signed_by(&admin_key, &ca)?;

        let service_account_key = KeyPair::generate()?;

        Ok(Pki {
            ca_cert_pem: ca.pem(),
            ca_cert_der: ca.der().to_vec(),
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            service_account_key_pem: service_account_key.serialize_pem(),
            service_account_public_key_pem: service_account_key.public_key_pem(),
        })
    }
}

fn dn(common_name: &str, organization: Option<&str>) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        dn.push(DnType::OrganizationName, organization);
    }
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_pem_material() {
        let pki = Pki::generate().unwrap();
        assert!(pki.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.admin_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            pki.service_account_public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert_ne!(pki.serving_key_pem, pki.admin_key_pem);
    }
}
