//! `sesroute health`: asks a running daemon whether it is alive (or ready),
//! for container health checks in images that have no shell or curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config;

/// How long the daemon has to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(config_path: &Path, ready: bool) -> ExitCode {
    let config = match config::load(config_path) {
        Ok(config) => config,
        Err(e) => return super::config_error(&e),
    };
    let url = format!("http://{}/{}", local(config.listen), if ready { "readyz" } else { "healthz" });
    let answer =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
            |runtime| {
                runtime.block_on(async {
                    let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| e.to_string())?;
                    let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    Ok((status, body))
                })
            },
        );
    match answer {
        Ok((status, body)) if status.is_success() => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("error: {url} answered {status}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The address to reach a listener bound to `listen` from the same host.
fn local(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}
