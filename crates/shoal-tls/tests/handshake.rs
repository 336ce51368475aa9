//! Real TLS handshakes over loopback against a [`TlsListener`]: client authentication modes,
//! protocol versions, reload, and stores that must be refused. Certificates are made with rcgen
//! per test; nothing is checked in.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use shoal_tls::{
    ClientAuth, Keystore, PrincipalMapper, TlsError, TlsListener, TlsSettings, TlsVersion,
    Truststore,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// (certificate PEM, key PEM, certificate DER) of a leaf for `name`.
    fn leaf(&self, name: &str) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new("shoal-test-ca"),
        };
        fixture.write_server_keystore("localhost");
        std::fs::write(fixture.path("ca.pem"), fixture.ca.pem()).unwrap();
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes server.pem (key + certificate, as Kafka's PEM keystore file) and returns the
    /// certificate's DER.
    fn write_server_keystore(&self, name: &str) -> CertificateDer<'static> {
        let (cert, key, der) = self.ca.leaf(name);
        std::fs::write(self.path("server.pem"), format!("{key}{cert}")).unwrap();
        der
    }

    fn settings(&self, client_auth: ClientAuth) -> TlsSettings {
        TlsSettings {
            keystore: Keystore::File(self.path("server.pem")),
            truststore: Some(Truststore::File(self.path("ca.pem"))),
            client_auth,
            protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            principal_mapper: PrincipalMapper::parse("DEFAULT").unwrap(),
        }
    }
}

/// A client identity: (certificate chain, key).
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn identity(ca: &Ca, name: &str) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (
        vec![cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

fn client_config(
    ca_pem: &str,
    identity: Option<Identity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types_pem(ca_pem) {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        shoal_tls::material::crypto_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    })
}

fn rustls_pki_types_pem(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(Result::unwrap)
        .collect()
}

/// Serves one connection with `listener`: echoes one line back. Returns the server's view.
async fn handshake(
    listener: &Arc<TlsListener>,
    client: Arc<rustls::ClientConfig>,
) -> Result<Option<CertificateDer<'static>>, String> {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let acceptor = listener.acceptor();
    let server = tokio::spawn(async move {
        let (stream, _) = socket.accept().await.unwrap();
        let mut tls = acceptor.accept(stream).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(&buf).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    });
    let connector = tokio_rustls::TlsConnector::from(client);
    let stream = TcpStream::connect(addr).await.unwrap();
    let result = async {
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"hello");
        let (_, session) = tls.get_ref();
        Ok(session.peer_certificates().map(|c| c[0].clone()))
    }
    .await;
    let served = server.await.unwrap();
    match (result, served) {
        (Ok(cert), Ok(())) => Ok(cert),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

#[tokio::test]
async fn client_authentication_modes() {
    let f = Fixture::new();
    let other_ca = Ca::new("someone-else");
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let ca = f.ca.pem();
    for (auth, no_cert_ok, trusted_ok, untrusted_ok) in [
        (ClientAuth::None, true, true, true),
        (ClientAuth::Requested, true, true, false),
        (ClientAuth::Required, false, true, false),
    ] {
        let listener = TlsListener::load("SSL", f.settings(auth)).unwrap();
        let no_cert = handshake(&listener, client_config(&ca, None, &all)).await;
        assert_eq!(
            no_cert.is_ok(),
            no_cert_ok,
            "{auth:?} without a certificate: {no_cert:?}"
        );
        let trusted = handshake(
            &listener,
            client_config(&ca, Some(identity(&f.ca, "alice")), &all),
        )
        .await;
        assert_eq!(trusted.is_ok(), trusted_ok, "{auth:?} trusted: {trusted:?}");
        let untrusted = handshake(
            &listener,
            client_config(&ca, Some(identity(&other_ca, "mallory")), &all),
        )
        .await;
        assert_eq!(
            untrusted.is_ok(),
            untrusted_ok,
            "{auth:?} untrusted: {untrusted:?}"
        );
    }
}

#[tokio::test]
async fn only_the_enabled_protocol_versions_are_offered() {
    let f = Fixture::new();
    let mut settings = f.settings(ClientAuth::None);
    settings.protocols = vec![TlsVersion::Tls13];
    let listener = TlsListener::load("SSL", settings).unwrap();
    let ca = f.ca.pem();
    assert!(
        handshake(
            &listener,
            client_config(&ca, None, &[&rustls::version::TLS13])
        )
        .await
        .is_ok()
    );
    let tls12 = handshake(
        &listener,
        client_config(&ca, None, &[&rustls::version::TLS12]),
    )
    .await;
    assert!(
        tls12.is_err(),
        "a TLS 1.2 client reached a TLS 1.3-only listener"
    );
}

#[tokio::test]
async fn changed_files_are_reloaded_and_bad_ones_keep_the_old_certificate() {
    let f = Fixture::new();
    let listener = TlsListener::load("SSL", f.settings(ClientAuth::None)).unwrap();
    let ca = f.ca.pem();
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let first = handshake(&listener, client_config(&ca, None, &all))
        .await
        .unwrap();
    assert!(
        !listener.reload_if_changed().unwrap(),
        "nothing changed yet"
    );

    // A renewed certificate: new connections get it without a restart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let renewed = f.write_server_keystore("localhost");
    assert!(listener.reload_if_changed().unwrap());
    let second = handshake(&listener, client_config(&ca, None, &all))
        .await
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(second, Some(renewed.clone()));

    // A half-written file fails to load; the listener keeps serving the renewed certificate.
    std::fs::write(f.path("server.pem"), "-----BEGIN PRIVATE KEY-----\ngarbage").unwrap();
    assert!(listener.reload_if_changed().is_err());
    let third = handshake(&listener, client_config(&ca, None, &all))
        .await
        .unwrap();
    assert_eq!(third, Some(renewed));
}

fn load_error(f: &Fixture, keystore: &str) -> TlsError {
    std::fs::write(f.path("bad.pem"), keystore).unwrap();
    let mut settings = f.settings(ClientAuth::None);
    settings.keystore = Keystore::File(f.path("bad.pem"));
    match TlsListener::load("SSL", settings) {
        Err(e) => e,
        Ok(_) => panic!("{keystore:?} loaded"),
    }
}

#[test]
fn unusable_stores_are_refused_naming_the_file() {
    let f = Fixture::new();
    let (cert, _, _) = f.ca.leaf("localhost");
    let (_, other_key, _) = f.ca.leaf("localhost");
    for (keystore, fragment) in [
        (String::new(), "no CERTIFICATE"),
        ("garbage".to_owned(), "no CERTIFICATE"),
        (cert.clone(), "PRIVATE KEY"),
        (format!("{other_key}{cert}"), "bad.pem"),
        (
            format!(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n{cert}"
            ),
            "encrypted",
        ),
    ] {
        let error = load_error(&f, &keystore).to_string();
        assert!(error.contains(fragment), "{keystore:?}: {error}");
        assert!(
            error.contains("ssl.keystore.location") || error.contains("bad.pem"),
            "{error}"
        );
    }
    let mut settings = f.settings(ClientAuth::Required);
    settings.truststore = Some(Truststore::File(f.path("missing-ca.pem")));
    let error = TlsListener::load("SSL", settings)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("missing-ca.pem"), "{error}");
    let huge = f.path("huge.pem");
    std::fs::write(&huge, vec![b'A'; 2 << 20]).unwrap();
    let mut settings = f.settings(ClientAuth::None);
    settings.keystore = Keystore::File(huge);
    let error = TlsListener::load("SSL", settings)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("larger"), "{error}");
}

/// The server's view of who connected: the mapped certificate subject, or ANONYMOUS.
async fn server_principal(
    listener: &Arc<TlsListener>,
    client: Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let acceptor = listener.acceptor();
    let server_listener = Arc::clone(listener);
    let server = tokio::spawn(async move {
        let (stream, _) = socket.accept().await.unwrap();
        let tls = acceptor.accept(stream).await.map_err(|e| e.to_string())?;
        server_listener
            .principal(tls.get_ref().1.peer_certificates())
            .map_err(|e| e.to_string())
    });
    let connector = tokio_rustls::TlsConnector::from(client);
    let stream = TcpStream::connect(addr).await.unwrap();
    let _client = connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await;
    server.await.unwrap()
}

#[tokio::test]
async fn the_principal_is_the_mapped_certificate_subject() {
    let f = Fixture::new();
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let ca = f.ca.pem();
    let mut settings = f.settings(ClientAuth::Requested);
    settings.principal_mapper = PrincipalMapper::parse("RULE:^CN=(.*?)$/$1/U").unwrap();
    let listener = TlsListener::load("SSL", settings).unwrap();
    let alice = server_principal(
        &listener,
        client_config(&ca, Some(identity(&f.ca, "alice")), &all),
    );
    assert_eq!(alice.await.unwrap(), "User:ALICE");
    let anonymous = server_principal(&listener, client_config(&ca, None, &all)).await;
    assert_eq!(anonymous.unwrap(), "User:ANONYMOUS");

    let mut strict = f.settings(ClientAuth::Requested);
    strict.principal_mapper = PrincipalMapper::parse("RULE:^CN=admin$/admin/").unwrap();
    let listener = TlsListener::load("SSL", strict).unwrap();
    let refused = server_principal(
        &listener,
        client_config(&ca, Some(identity(&f.ca, "alice")), &all),
    )
    .await;
    assert!(refused.unwrap_err().contains("CN=alice"));
    let mut default = f.settings(ClientAuth::Requested);
    default.principal_mapper = PrincipalMapper::parse("DEFAULT").unwrap();
    let listener = TlsListener::load("SSL", default).unwrap();
    let full = server_principal(
        &listener,
        client_config(&ca, Some(identity(&f.ca, "bob")), &all),
    )
    .await;
    assert_eq!(full.unwrap(), "User:CN=bob");
}
