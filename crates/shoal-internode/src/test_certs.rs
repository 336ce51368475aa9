//! Certificates for tests (feature `test-certs`): a CA per test, node certificates named
//! `CN=node-<id>` for 127.0.0.1 and localhost, written as Kafka PEM keystores. Nothing is
//! checked in.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use shoal_tls::{ClientAuth, Keystore, PrincipalMapper, TlsSettings, TlsVersion, Truststore};

use crate::tls::NodeTls;

pub struct TestCa {
    name: String,
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`; its certificate is written to `<dir>/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca = TestCa {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            issuer,
        };
        std::fs::write(ca.ca_path(), ca.issuer.pem()).unwrap();
        ca
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// Writes a keystore (key + certificate) for subject `CN=<common_name>`, valid for
    /// 127.0.0.1 and localhost as server and client, and returns its path.
    pub fn keystore(&self, common_name: &str) -> PathBuf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let path = self.dir.join(format!("{}-{common_name}.pem", self.name));
        std::fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        path
    }

    /// Listener settings with the keystore of `common_name` and this CA as truststore.
    pub fn settings(&self, common_name: &str) -> TlsSettings {
        TlsSettings {
            keystore: Keystore::File(self.keystore(common_name)),
            truststore: Some(Truststore::File(self.ca_path())),
            client_auth: ClientAuth::Required,
            protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            principal_mapper: PrincipalMapper::parse("DEFAULT").unwrap(),
        }
    }

    /// A node listener's TLS with the certificate of `common_name`.
    pub fn node_tls(&self, listener: &str, common_name: &str) -> Arc<NodeTls> {
        NodeTls::load(listener, self.settings(common_name)).unwrap()
    }

    /// A client configuration presenting the certificate of `common_name` (a process that may
    /// or may not be a node), trusting this CA.
    pub fn client_config(&self, common_name: &str) -> Arc<rustls::ClientConfig> {
        shoal_tls::material::node_client_config(&self.settings(common_name)).unwrap()
    }
}
