use super::*;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

fn key(name: &str) -> Arc<CertifiedKey> {
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap_or_else(|e| panic!("{e}"));
    let kp = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let cert = params.self_signed(&kp).unwrap_or_else(|e| panic!("{e}"));
    let provider = rustls::crypto::ring::default_provider();
    let der = PrivateKeyDer::try_from(kp.serialize_der()).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(CertifiedKey::from_der(vec![cert.der().clone()], der, &provider).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn sni_picks_exact_then_wildcard_then_the_default() {
    let (a, b, w) = (key("a.example.com"), key("b.example.com"), key("*.wild.example.com"));
    let resolver = SniResolver {
        entries: vec![
            (vec!["a.example.com".into()], a.clone()),
            (vec!["b.example.com".into()], b.clone()),
            (vec!["*.wild.example.com".into()], w.clone()),
        ],
    };
    let pick = |name| resolver.pick(name).map(|k| k.cert[0].clone());
    assert_eq!(pick(Some("B.Example.com.")), Some(b.cert[0].clone()));
    assert_eq!(pick(Some("x.wild.example.com")), Some(w.cert[0].clone()));
    assert_eq!(pick(Some("y.x.wild.example.com")), Some(a.cert[0].clone()), "a wildcard covers one label");
    assert_eq!(pick(None), Some(a.cert[0].clone()));
}

fn fail<E: std::fmt::Display, T>(e: E) -> T {
    panic!("{e}")
}

/// A fresh scratch folder of this test process.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-tls-unit-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(fail);
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(fail);
    path
}

/// A full handshake in memory: the listener's acceptor from [`build`] against a rustls
/// client presenting a certificate; what [`session_info`] gives is what the `mtls` provider
/// and the access log will see.
#[tokio::test]
async fn session_info_carries_the_verified_client_subject_and_sans() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let dir = scratch("mtls");
    let ca_key = KeyPair::generate().unwrap_or_else(fail);
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(fail);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    let ca_pem = ca.self_signed(&ca_key).unwrap_or_else(fail).pem();
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().unwrap_or_else(fail);
    let server = CertificateParams::new(vec!["gw.test".to_owned()]).unwrap_or_else(fail);
    let server_pem = server.signed_by(&server_key, &issuer).unwrap_or_else(fail).pem();

    let client_key = KeyPair::generate().unwrap_or_else(fail);
    let mut client = CertificateParams::new(vec!["billing.acme.example".to_owned()]).unwrap_or_else(fail);
    client.distinguished_name = rcgen::DistinguishedName::new();
    client.distinguished_name.push(DnType::OrganizationName, "Acme");
    client.distinguished_name.push(DnType::CommonName, "acme-billing");
    let ia5 = |s: &str| rcgen::string::Ia5String::try_from(s).unwrap_or_else(fail);
    client.subject_alt_names.push(SanType::URI(ia5("spiffe://acme/billing")));
    client.subject_alt_names.push(SanType::Rfc822Name(ia5("ops@acme.example")));
    client.subject_alt_names.push(SanType::IpAddress([10, 1, 2, 3].into()));
    let client_cert = client.signed_by(&client_key, &issuer).unwrap_or_else(fail);

    let spec = ListenerTlsSpec {
        certificates: vec![(
            write(&dir, "gw.pem", &server_pem),
            write(&dir, "gw-key.pem", &server_key.serialize_pem()),
        )],
        allow_tls12: true,
        client_ca: Some(write(&dir, "ca.pem", &ca_pem)),
        client_cert_required: true,
    };
    let text = "version: 1\nlisteners: [{ name: l, bind: \"127.0.0.1:1\", tls: { certificates: [{ cert: gw.pem, key: gw-key.pem }], client_ca: ca.pem, client_cert: required } }]\n";
    let loaded = portcullis_config::load_str(text, "t.yaml", &dir, None).unwrap_or_else(fail);
    let files = crate::files::load_files(&loaded, SystemTime::now()).into_result().unwrap_or_else(fail);
    let material = files.listener("l").unwrap_or_else(|| panic!("the listener's files"));
    let listener = build(&spec, material, true).unwrap_or_else(fail);

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap_or_else(fail)).unwrap_or_else(fail);
    }
    let key = PrivateKeyDer::try_from(client_key.serialize_der()).unwrap_or_else(fail);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_root_certificates(roots).with_client_auth_cert(vec![client_cert.der().clone()], key))
        .unwrap_or_else(fail);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move {
        let stream = listener.acceptor.accept(server_io).await?;
        Ok::<_, io::Error>(session_info(stream.get_ref().1))
    });
    let name = rustls_pki_types::ServerName::try_from("gw.test").unwrap_or_else(fail);
    let _client = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, client_io)
        .await
        .unwrap_or_else(|e| panic!("client handshake: {e}"));
    let info = accept.await.unwrap_or_else(fail).unwrap_or_else(|e| panic!("server handshake: {e}"));

    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.server_name.as_deref(), Some("gw.test"));
    let cert = info.client_cert.unwrap_or_else(|| panic!("no client certificate in the session info"));
    assert_eq!(cert.subject, "CN=acme-billing,O=Acme");
    assert_eq!(
        cert.sans,
        ["DNS:billing.acme.example", "URI:spiffe://acme/billing", "email:ops@acme.example", "IP:10.1.2.3"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dn_values_are_escaped() {
    assert_eq!(escape_dn_value("Acme, Inc."), "Acme\\, Inc.");
    assert_eq!(escape_dn_value("#x "), "\\#x\\ ");
}
