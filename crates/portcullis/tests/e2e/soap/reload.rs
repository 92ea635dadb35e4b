//! A WSDL is config: editing the file reloads a running gateway (`portcullis run`), as an
//! edit of the config file does.

use std::time::{Duration, Instant};

use http::StatusCode;

use super::fixtures;
use super::hostile::hostile_backend;
use crate::kit::get;

/// `portcullis run` as a process (killed when dropped) and the address it reports.
struct Running {
    child: std::process::Child,
    addr: String,
}

impl Running {
    fn spawn(config: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(super::BIN)
            .args(["run", "-c", config.to_str().unwrap_or_default()])
            .env("PORTCULLIS_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn portcullis");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find(" addr=") {
                    let _ = tx.send(line[at + 6..].chars().take_while(|c| !c.is_whitespace()).collect::<String>());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("the gateway did not report its address");
        Self { child, addr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_wsdl_reloads_the_config() {
    let backend = hostile_backend().await;
    let dir = crate::kit::scratch_dir();
    let original = std::fs::read_to_string(fixtures().join("contacts-wrapped.wsdl")).expect("fixture");
    std::fs::write(dir.join("crm.wsdl"), &original).expect("write WSDL");
    let config = dir.join("gateway.yaml");
    let text = format!(
        "version: 1\nlisteners: [{{ name: l, bind: \"127.0.0.1:0\" }}]\nlogging: {{ access: {{ path: off }} }}\nupstreams:\n  crm: {{ targets: [\"{}\"], soap: {{ wsdl: crm.wsdl }} }}\nroutes:\n  - {{ name: c, match: {{ path: \"/contacts/{{id}}\", methods: [GET] }}, upstream: crm, auth: none, soap: {{ operation: GetContact, request: {{ ContactId: \"{{path.id}}\" }} }} }}\n",
        backend.url()
    );
    std::fs::write(&config, text).expect("write config");
    let gateway = Running::spawn(&config);
    let url = format!("http://{}/contacts/7", gateway.addr);
    assert_eq!(get(&url, &[]).await.status, StatusCode::OK);
    // The watcher takes its baseline once the gateway runs; an edit before that would be
    // part of the baseline. Give it a few watch intervals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The service moved: only the WSDL says so.
    std::fs::write(dir.join("crm.wsdl"), original.replace("ContactService.asmx", "v2/Contacts.asmx")).expect("edit");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(get(&url, &[]).await.status, StatusCode::OK);
        if backend.requests().last().is_some_and(|r| r.uri == "/v2/Contacts.asmx") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the WSDL change was not picked up: {:?}",
            backend.requests().last().map(|r| r.uri.clone())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(backend.requests()[0].uri, "/ContactService.asmx");
}
