//! `portcullis explain -c FILE METHOD URL`: one request through every phase offline — each
//! phase's verdict and what decided, the route, the consumer, the limits that would apply
//! (counted in fresh memory, no real counter spent), and the request the upstream would
//! receive (URL and headers after every transform) or the answer the gateway would give.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use portcullis_core::Snapshot;
use portcullis_core::snapshot::ProviderKind;
use serde_json::{Value, json};

use portcullis_offline::cases::{DEFAULT_CLIENT_IP, TokenPlace};
use portcullis_offline::run::{token_place, unix_now};
use portcullis_offline::tokens::SigningKey;
use portcullis_offline::{Offline, OfflineRequest, Outcome, StandIn, header_arg};

#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) config: crate::cli::ConfigArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub(crate) headers: Vec<String>,
    /// The client's address (default 203.0.113.1).
    #[arg(long)]
    pub(crate) client_ip: Option<IpAddr>,
    /// The request body, read from this file.
    #[arg(long)]
    pub(crate) body: Option<PathBuf>,
    /// Claims of a token made for the run (signed with a throwaway key its provider trusts
    /// for this run only), e.g. '{"sub":"alice","scope":"orders.read"}'.
    #[arg(long)]
    pub(crate) token_claims: Option<String>,
    /// The JWT provider the token of --token-claims is for (default: the config's only one).
    #[arg(long)]
    pub(crate) provider: Option<String>,
    /// A verified client certificate's subject, as mTLS would present it.
    #[arg(long)]
    pub(crate) client_cert_subject: Option<String>,
    /// What the stand-in upstream answers (default 200).
    #[arg(long, default_value_t = 200)]
    pub(crate) upstream_status: u16,
    pub(crate) method: String,
    /// Absolute: https://api.example.com/v1/orders
    pub(crate) url: String,
}

pub(crate) fn run(args: &ExplainArgs) -> ExitCode {
    match explain(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn explain(args: &ExplainArgs) -> anyhow::Result<()> {
    let loaded = portcullis_config::load_file(&args.config.config, args.config.stage.as_deref());
    let snapshot = crate::cli::build(loaded)
        .map_err(|errors| anyhow::anyhow!("{errors}\n{} error(s) in the config", errors.len()))?;
    let now = unix_now();
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = header_arg(h)?;
        headers.append(name, value);
    }
    let mut url: Uri = args.url.parse().map_err(|e| anyhow::anyhow!("url `{}`: {e}", args.url))?;
    if url.scheme().is_none() || url.authority().is_none() {
        anyhow::bail!("the URL must be absolute (https://host/path)");
    }
    let mut keys = Vec::new();
    if let Some(claims) = &args.token_claims {
        let claims: serde_json::Map<String, Value> =
            serde_json::from_str(claims).map_err(|e| anyhow::anyhow!("--token-claims is not a JSON object: {e}"))?;
        let (name, settings, place) = jwt_provider(&snapshot, args.provider.as_deref())?;
        let key = SigningKey::throwaway(&name)?;
        let token = key.sign(&settings, &claims, now)?;
        match place {
            TokenPlace::Header => {
                headers.append(http::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
            }
            TokenPlace::Cookie(cookie) => {
                headers.append(http::header::COOKIE, format!("{cookie}={token}").parse()?);
            }
            TokenPlace::Query(param) => {
                let separator = if url.query().is_some() { '&' } else { '?' };
                url = format!("{url}{separator}{param}={token}").parse()?;
            }
        }
        keys.push(key);
    }
    let body = match &args.body {
        Some(path) => Bytes::from(std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?),
        None => Bytes::new(),
    };
    let request = OfflineRequest {
        method: Method::from_bytes(args.method.as_bytes())?,
        url,
        headers,
        body,
        client_ip: args.client_ip.unwrap_or(IpAddr::from(DEFAULT_CLIENT_IP)),
        client_cert_subject: args.client_cert_subject.clone(),
    };
    let stand_in = StandIn { status: http::StatusCode::from_u16(args.upstream_status)?, ..StandIn::default() };
    let offline = Offline::new(&snapshot, &keys, now)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(offline.run(&request, &stand_in))?;
    let report = report(&snapshot, &request, &outcome);
    if args.json {
        // A closed pipe (`| head`) ends the output, not the process with a panic.
        let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?);
    } else {
        let _ = write!(std::io::stdout(), "{}", text(&report));
    }
    Ok(())
}

/// The JWT provider a made token is for, with its settings and where it looks first.
fn jwt_provider(
    snapshot: &Snapshot,
    named: Option<&str>,
) -> anyhow::Result<(String, portcullis_auth::jwt::JwtSettings, TokenPlace)> {
    let jwt: Vec<_> = snapshot
        .providers
        .iter()
        .filter_map(|p| match &p.kind {
            ProviderKind::Jwt(spec) => Some((p.name.to_string(), spec)),
            _ => None,
        })
        .collect();
    let chosen = match named {
        Some(name) => jwt.iter().find(|(n, _)| n == name),
        None if jwt.len() == 1 => jwt.first(),
        None => None,
    };
    let Some((name, spec)) = chosen else {
        let names: Vec<&str> = jwt.iter().map(|(n, _)| n.as_str()).collect();
        anyhow::bail!("--token-claims needs --provider, one of the config's JWT providers: {names:?}");
    };
    Ok((name.clone(), spec.settings.clone(), token_place(&spec.token_from)))
}

fn headers_json(headers: &HeaderMap) -> Value {
    Value::Array(headers.iter().map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())])).collect())
}

/// What `--json` prints, and what the text is made from.
fn report(snapshot: &Snapshot, request: &OfflineRequest, outcome: &Outcome) -> Value {
    let ctx = &outcome.ctx;
    let mut phases = Vec::new();
    for step in ctx.decisions.steps() {
        phases.push(json!({ "phase": step.phase, "verdict": step.verdict.as_str(), "by": step.by.as_str() }));
    }
    let limits: Vec<Value> = ctx
        .route
        .as_ref()
        .map(|route| {
            route
                .rate_limits
                .iter()
                .zip(&ctx.rate_keys)
                .filter_map(|(&i, key)| snapshot.rate_limits.get(i).map(|l| json!({ "limit": &*l.name, "key": key })))
                .chain(ctx.plan.as_ref().map(|plan| json!({ "limit": format!("plan:{plan}"), "key": format!("c:{}", ctx.consumer.as_deref().unwrap_or("")) })))
                .collect()
        })
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&outcome.body);
    let answer = json!({
        "status": outcome.status.as_u16(),
        "headers": headers_json(&outcome.headers),
        "body": serde_json::from_str::<Value>(&body).unwrap_or_else(|_| Value::String(body.into_owned())),
    });
    let upstream = outcome.upstream.as_ref().map(|u| {
        json!({
            "upstream": &*u.upstream,
            "target": &*u.target,
            "method": u.method.as_str(),
            "path": u.path_and_query,
            "headers": headers_json(&u.headers),
            "body_bytes": u.body.len(),
        })
    });
    json!({
        "request": { "method": request.method.as_str(), "url": request.url.to_string(), "client_ip": request.client_ip.to_string() },
        "phases": phases,
        "route": ctx.route.as_ref().map(|r| &*r.name),
        "consumer": ctx.consumer,
        "provider": ctx.auth.as_deref(),
        "limits": limits,
        "decided_by": ctx.decisions.decided_by().map(|d| d.to_string()),
        "upstream": upstream,
        "response": answer,
    })
}

fn text(report: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(
        out,
        "{} {}  (from {})",
        s(&report["request"]["method"]),
        s(&report["request"]["url"]),
        s(&report["request"]["client_ip"])
    );
    let _ = writeln!(out, "\nphases:");
    for p in report["phases"].as_array().into_iter().flatten() {
        let by = p["by"].as_str().map(|b| format!("  {b}")).unwrap_or_default();
        let _ = writeln!(out, "  {:<20} {:<7}{by}", s(&p["phase"]), s(&p["verdict"]));
    }
    let _ = writeln!(out, "\nroute:      {}", s(&report["route"]));
    let consumer = match (report["consumer"].as_str(), report["provider"].as_str()) {
        (Some(c), Some(p)) => format!("{c} (via {p})"),
        (Some(c), None) => c.to_owned(),
        _ => "-".to_owned(),
    };
    let _ = writeln!(out, "consumer:   {consumer}");
    for l in report["limits"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "limit:      {} (bucket {})", s(&l["limit"]), s(&l["key"]));
    }
    if let Some(d) = report["decided_by"].as_str() {
        let _ = writeln!(out, "decided by: {d}");
    }
    match report["upstream"].as_object() {
        Some(u) => {
            let _ = writeln!(
                out,
                "\nthe upstream `{}` would receive (target {}):\n  {} {}",
                s(&u["upstream"]),
                s(&u["target"]),
                s(&u["method"]),
                s(&u["path"])
            );
            for h in u["headers"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "  {}: {}", s(&h[0]), s(&h[1]));
            }
            let _ = writeln!(
                out,
                "\nand the client would get {} (the stand-in's answer after the response phases)",
                report["response"]["status"]
            );
        }
        None => {
            let _ = writeln!(out, "\nthe gateway would answer {} itself:", report["response"]["status"]);
            for h in report["response"]["headers"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "  {}: {}", s(&h[0]), s(&h[1]));
            }
            let body = &report["response"]["body"];
            if !(body.is_null() || body.as_str().is_some_and(str::is_empty)) {
                let _ = writeln!(out, "\n{}", serde_json::to_string_pretty(body).unwrap_or_default());
            }
        }
    }
    out
}
