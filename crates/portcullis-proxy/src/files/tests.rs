use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::{LoadedFiles, load_files, prepare};

fn fail<E: std::fmt::Display, T>(e: E) -> T {
    panic!("{e}")
}

/// A fresh scratch folder of this test process.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-files-unit-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(fail);
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(fail);
}

/// A CA and leaves signed by it, written as PEM files.
struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap_or_else(fail);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(fail);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = params.self_signed(&key).unwrap_or_else(fail).pem();
        Self { issuer: Issuer::new(params, key), ca_pem }
    }

    /// Writes `dir/{stem}.pem` and `dir/{stem}-key.pem`, valid until 2030-01-01.
    fn leaf(&self, dir: &Path, stem: &str, name: &str) {
        let key = KeyPair::generate().unwrap_or_else(fail);
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap_or_else(fail);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap_or_else(fail);
        write(dir, &format!("{stem}.pem"), &cert.pem());
        write(dir, &format!("{stem}-key.pem"), &key.serialize_pem());
    }
}

/// 2030-01-01T00:00:00Z, when the leaves expire.
const END: Duration = Duration::from_secs(1_893_456_000);

/// A month before the leaves expire: further than the warning period from it.
fn early() -> SystemTime {
    SystemTime::UNIX_EPOCH + END - Duration::from_secs(31 * 86_400)
}

fn load(dir: &Path, text: &str) -> portcullis_config::Loaded {
    portcullis_config::load_str(text, "gw.yaml", dir, None).unwrap_or_else(fail)
}

const GOOD: &str = r#"version: 1
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      certificates: [{ cert: api.pem, key: api-key.pem }, { cert: www.pem, key: www-key.pem }]
      client_ca: ca.pem
  - name: plain
    bind: "127.0.0.1:1"
state: { redis: "rediss://127.0.0.1:1", redis_ca: ca.pem }
upstreams:
  orders: { targets: ["https://127.0.0.1:1"], tls: { ca: ca.pem, client_cert: gw.pem, client_key: gw-key.pem } }
  local: { targets: ["http://127.0.0.1:1"] }
auth:
  corp: { type: jwt, issuer: "https://login.example.com/t", ca: ca.pem, audiences: [api], algorithms: [RS256] }
routes:
  - { name: r, match: { path: /x }, upstream: orders, auth: none }
"#;

fn good_dir(tag: &str) -> PathBuf {
    let dir = scratch(tag);
    let pki = Pki::new();
    write(&dir, "ca.pem", &pki.ca_pem);
    pki.leaf(&dir, "api", "api.example.com");
    pki.leaf(&dir, "www", "www.example.com");
    pki.leaf(&dir, "gw", "gateway.internal");
    dir
}

#[test]
fn a_good_config_yields_the_material_run_serves() {
    let dir = good_dir("good");
    let report = load_files(&load(&dir, GOOD), early());
    assert!(report.errors.is_empty(), "{}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let files: LoadedFiles = report.into_result().unwrap_or_else(fail);
    let public = files.listener("public").unwrap_or_else(|| panic!("the TLS listener"));
    let names: Vec<&str> = public.certificates.iter().map(|(_, info)| info.name.as_str()).collect();
    assert_eq!(names, ["api.example.com", "www.example.com"], "in the order written");
    assert_eq!(public.client_ca.as_ref().map(Vec::len), Some(1));
    assert!(files.listener("plain").is_none(), "plain HTTP has no material");
    let orders = files.upstream("orders").unwrap_or_else(|| panic!("the TLS upstream"));
    assert!(orders.client.is_some() && !orders.roots.is_empty());
    assert!(files.upstream("local").is_none(), "plain targets need no TLS");
    assert!(files.redis_ca().is_some_and(|pem| pem.starts_with(b"-----BEGIN CERTIFICATE-----")));
    assert!(files.jwt_ca("corp").is_some_and(|roots| roots.len() == 1));
    let (snapshot, files) = prepare(&load(&dir, GOOD)).unwrap_or_else(fail);
    assert!(crate::runtime::check_build(&snapshot, &files).is_empty(), "nothing left for the build to refuse");
    assert!(crate::identity::Identity::new(&snapshot, &files).is_ok(), "the JWKS client trusts the loaded ca");
    let unloaded = crate::identity::Identity::new(&snapshot, &LoadedFiles::default()).err().map(|e| e.to_string());
    assert_eq!(
        unloaded.as_deref(),
        Some("auth provider `corp`: its `ca` was not loaded"),
        "never read behind the step"
    );
}

/// Two bad listener certificates (a missing file, a key of another certificate), a client CA
/// that is not PEM, and an upstream whose CA is not PEM and whose client key is no key: five
/// errors from one call, each at the line of the key naming the file.
#[test]
fn every_bad_file_is_reported_at_the_key_that_names_it() {
    let dir = good_dir("bad");
    write(&dir, "garbage.pem", "not PEM at all\n");
    write(&dir, "secret.pem", "-----BEGIN NOTHING-----\nSECRET-KEY-MATERIAL\n-----END NOTHING-----\n");
    let text = r#"version: 1
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      certificates:
        - { cert: gone.pem, key: api-key.pem }
        - { cert: www.pem, key: api-key.pem }
      client_ca: garbage.pem
upstreams:
  orders:
    targets: ["https://127.0.0.1:1"]
    tls: { ca: garbage.pem, client_cert: gw.pem, client_key: secret.pem }
"#;
    let report = load_files(&load(&dir, text), early());
    let found: Vec<(String, usize, &str)> = report
        .errors
        .iter()
        .map(|d| (d.path.to_string(), d.location.map_or(0, |l| l.line), d.message.as_str()))
        .collect();
    assert_eq!(found.len(), 5, "{found:#?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("listeners[0].tls.certificates[0].cert", 7));
    assert!(found[0].2.starts_with("cannot read `gone.pem`"), "{}", found[0].2);
    assert_eq!((found[1].0.as_str(), found[1].1), ("listeners[0].tls.certificates[1].key", 8));
    assert!(found[1].2.contains("`api-key.pem` is not a usable key for `www.pem`"), "{}", found[1].2);
    assert_eq!((found[2].0.as_str(), found[2].1), ("listeners[0].tls.client_ca", 9));
    assert!(found[2].2.contains("holds no PEM certificate"), "{}", found[2].2);
    assert_eq!((found[3].0.as_str(), found[3].1), ("upstreams.orders.tls.ca", 13));
    assert_eq!((found[4].0.as_str(), found[4].1), ("upstreams.orders.tls.client_key", 13));
    assert!(found[4].2.contains("holds no PEM private key"), "{}", found[4].2);
    assert!(found.iter().all(|(_, _, m)| !m.contains("SECRET")), "a key file's content is never quoted");
    assert!(report.into_result().is_err());
}

#[test]
fn a_certificate_near_or_past_its_end_is_a_warning_at_its_key() {
    let dir = good_dir("expiry");
    let loaded = load(&dir, GOOD);
    let end = SystemTime::UNIX_EPOCH + END;
    let soon = load_files(&loaded, end - Duration::from_secs(3 * 86_400 + 60));
    assert!(soon.errors.is_empty(), "expiry does not refuse the load: {}", soon.errors);
    let messages: Vec<String> = soon.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "both served certificates: {messages:?}");
    assert!(
        messages[0].contains("listeners[0].tls.certificates[0].cert: `api.pem` (api.example.com) expires in 3 day(s)")
    );
    let past = load_files(&loaded, end + Duration::from_secs(2 * 86_400 + 60));
    assert!(past.warnings.iter().all(|w| w.message.ends_with("expired 2 day(s) ago")), "{:?}", past.warnings);
}

/// The config hash covers the bytes the material was built from: a certificate rewritten
/// after the load read it does not change this load's hash, only the next load's.
#[test]
fn each_file_is_read_once_per_load_and_hashed_as_read() {
    let dir = good_dir("once");
    let before = portcullis_core::compile(&load(&dir, GOOD)).unwrap_or_else(fail).hash;
    let loaded = load(&dir, GOOD);
    let report = load_files(&loaded, early());
    assert!(report.errors.is_empty(), "{}", report.errors);
    std::fs::rename(dir.join("www.pem"), dir.join("api.pem")).unwrap_or_else(fail);
    let same_load = portcullis_core::compile(&loaded).unwrap_or_else(fail).hash;
    assert_eq!(same_load, before, "hashed from the load's own reading");
    assert_eq!(loaded.contents.len(), 7, "ca.pem (named four times), 2×2 listener files, gw.pem and its key");
    let next_load = portcullis_core::compile(&load(&dir, GOOD)).unwrap_or_else(fail).hash;
    assert_ne!(next_load, before, "a new load reads the new file");
}

/// The parts of a document left out for their shape are not read; the rest are, whatever
/// the compile step says of other sections.
#[test]
fn files_are_checked_when_other_sections_do_not_compile() {
    let dir = good_dir("partial");
    let text = GOOD.replace("cert: www.pem", "cert: gone.pem").replace("upstream: orders", "upstream: nowhere");
    let loaded = load(&dir, &text);
    assert!(portcullis_core::compile(&loaded).is_err(), "an unknown upstream");
    let errors = prepare(&loaded).err().unwrap_or_default();
    let shown = errors.to_string();
    assert_eq!(errors.len(), 2, "{shown}");
    assert!(shown.contains("gone.pem") && shown.contains("unknown upstream `nowhere`"), "{shown}");
}
