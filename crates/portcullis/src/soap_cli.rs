//! `portcullis soap routes`: the route config for every operation of a WSDL (SPEC §1, §6),
//! printed as YAML with a top-level `routes:` list, ready to paste into a config whose
//! upstream has `soap: { wsdl }`. The choices (POST routes, names, paths, auth left for the
//! user to state) are `portcullis_soap::routes`'.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use portcullis_soap::{RouteAuth, RouteOptions, Wsdl};

#[derive(Subcommand)]
pub(crate) enum SoapCommand {
    /// Print route config (YAML) for every operation in a WSDL.
    Routes(RoutesArgs),
}

#[derive(clap::Args)]
pub(crate) struct RoutesArgs {
    /// The WSDL file: WSDL 1.1 in one file (for WCF services, the `?singleWsdl` one).
    #[arg(long)]
    wsdl: PathBuf,
    /// The upstream the routes send to (the one with `soap: { wsdl }`).
    #[arg(long, value_parser = upstream_name)]
    upstream: String,
    /// Auth providers that may call the routes, comma separated (`auth: { any: [...] }`).
    /// Without --auth or --public the routes say `auth: { any: [] }`, which `validate`
    /// refuses until someone decides.
    #[arg(long, value_delimiter = ',', conflicts_with = "public", value_parser = upstream_name)]
    auth: Vec<String>,
    /// Make the routes public (`auth: none`).
    #[arg(long)]
    public: bool,
    /// Prepended to every route's path, e.g. `/v1`.
    #[arg(long, default_value = "", value_parser = path_prefix)]
    path_prefix: String,
}

pub(crate) fn run(command: &SoapCommand) -> ExitCode {
    match command {
        SoapCommand::Routes(args) => routes(args),
    }
}

fn routes(args: &RoutesArgs) -> ExitCode {
    let wsdl = match Wsdl::from_file(&args.wsdl) {
        Ok(wsdl) => wsdl,
        Err(e) => {
            eprintln!("{}: {e}", args.wsdl.display());
            return ExitCode::from(1);
        }
    };
    let auth = match (args.public, args.auth.is_empty()) {
        (true, _) => RouteAuth::Public,
        (false, false) => RouteAuth::Any(args.auth.clone()),
        (false, true) => RouteAuth::Unset,
    };
    let options = RouteOptions {
        upstream: args.upstream.clone(),
        auth,
        path_prefix: args.path_prefix.clone(),
        source: args.wsdl.file_name().map(|n| n.to_string_lossy().into_owned()),
    };
    print!("{}", portcullis_soap::routes_yaml(&wsdl, &options));
    if options.auth == RouteAuth::Unset {
        eprintln!("note: the routes say `auth: {{ any: [] }}`; name providers (--auth) or pass --public");
    }
    ExitCode::SUCCESS
}

/// An upstream or provider name as the config writes it.
fn upstream_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(name.to_owned())
}

/// `/v1` or `/api/soap`; a trailing `/` is dropped, and nothing that a route path reads
/// specially (`{`, `}`, `?`, `#`, spaces) is accepted.
fn path_prefix(text: &str) -> Result<String, String> {
    let prefix = text.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(String::new());
    }
    if !prefix.starts_with('/') {
        return Err("must start with `/`".to_owned());
    }
    if prefix.contains("//") || prefix.chars().any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '?' | '#')) {
        return Err("must be plain path segments, like `/v1`".to_owned());
    }
    Ok(prefix.to_owned())
}
