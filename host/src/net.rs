//! The network engine: the shared async runtime and HTTP clients ([`Net`]), and the one place
//! that decides what a request may do ([`Policy`], [`http_blocking`]). Chat, install and the
//! gateway send through [`Net`]; plugins' requests (the `HostServices::http` service) go
//! through [`http_blocking`]:
//!
//! * https only, except to loopback hosts;
//! * only the hosts the plugin's descriptor allows (loopback always), checked on every request
//!   and every redirect hop; a remote host may not redirect to loopback;
//! * 307/308 followed with the body re-sent, 301/302/303 followed as `GET`, at most 5 hops;
//! * a total timeout (15 s by default) and a body cap (16 KiB for error bodies, 1 MiB else);
//! * proxies from `HTTP(S)_PROXY`, never for loopback.
//!
//! A dropped connection, a timeout or a truncated body is a [`kind::TRANSIENT`] error; a
//! refusal is [`kind::REFUSED`]. Nothing here panics across the boundary.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec, Tuple2};
use hermes_plugin_api::{kind, HttpRequest, HttpResponse, PluginError};

use crate::plugins::ProviderDesc;

/// Default total timeout of a plugin request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest timeout a plugin may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Cap on error bodies (status ≥ 400).
pub const ERROR_BODY_CAP: usize = 16 * 1024;
/// Cap on other bodies.
pub const BODY_CAP: usize = 1024 * 1024;
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// The shared async runtime and HTTP clients, built on first use only: commands that make no
/// network call never pay for them.
pub struct Net {
    rt: tokio::runtime::Runtime,
    /// For remote hosts: proxies and the platform's certificate verifier. Loading the
    /// verifier costs several milliseconds, so it is built only when a remote host is asked for.
    proxied: OnceLock<reqwest::Client>,
    /// For loopback: no proxy and no certificate store (loopback is plain http).
    direct: reqwest::Client,
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("hermes/", env!("CARGO_PKG_VERSION")))
}

static NET: OnceLock<Net> = OnceLock::new();
static REQUEST_LOG: OnceLock<crate::output::Output> = OnceLock::new();

/// Log every HTTP request of this process to `out` at `-vv` (see [`log_request`]).
pub fn set_request_log(out: &crate::output::Output) {
    if out.verbose() >= 2 {
        let _ = REQUEST_LOG.set(out.clone());
    }
}

/// A URL as the request log shows it: scheme, host, port and path. User info, the query and
/// the fragment can carry secrets (keys, codes, tokens in `?…`), so they never appear; a
/// query is marked `?…`.
pub fn loggable_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    match url.host() {
        Some(url::Host::Ipv6(ip)) => shown.push_str(&format!("[{ip}]")),
        Some(h) => shown.push_str(&h.to_string()),
        None => {}
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(&crate::text::line(url.path(), 300));
    if url.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

/// The one place HTTP requests are logged (at `-vv`): method, URL without secrets, the status
/// or why there is none, and the time taken. Every request the host makes comes through here:
/// plugins' (each redirect hop), chat's, the gateway's and plugin downloads.
pub fn log_request(
    method: &str,
    url: &reqwest::Url,
    outcome: std::result::Result<u16, &str>,
    took: Duration,
) {
    let Some(out) = REQUEST_LOG.get() else {
        return;
    };
    let result = match outcome {
        Ok(status) => status.to_string(),
        Err(why) => format!("failed: {}", crate::text::line(why, 200)),
    };
    out.log(
        2,
        &format!(
            "http {} {} -> {result} ({} ms)",
            crate::text::line(method, 16),
            loggable_url(url),
            took.as_millis()
        ),
    );
}
static PROXIES: OnceLock<crate::config::Proxies> = OnceLock::new();

/// Use these proxy settings (read from the environment at start) for every remote request of
/// this process. Without a call, no proxy is used: the process environment is never read
/// later, when a plugin may have changed it.
pub fn set_proxies(proxies: crate::config::Proxies) {
    let _ = PROXIES.set(proxies);
}

fn proxied_client() -> reqwest::Client {
    let mut b = client_builder().no_proxy();
    if let Some(p) = PROXIES.get() {
        let no = p
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let add = |b: reqwest::ClientBuilder,
                   url: &Option<String>,
                   make: fn(&str) -> reqwest::Result<reqwest::Proxy>| {
            match url.as_deref().map(make) {
                Some(Ok(proxy)) => b.proxy(proxy.no_proxy(no.clone())),
                _ => b,
            }
        };
        b = add(b, &p.https, |u| reqwest::Proxy::https(u));
        b = add(b, &p.http, |u| reqwest::Proxy::http(u));
        b = add(b, &p.all, |u| reqwest::Proxy::all(u));
    }
    b.build().expect("cannot build the HTTP client")
}

impl Net {
    /// The process-wide instance.
    pub fn get() -> &'static Net {
        NET.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("hermes-net")
                .build()
                .expect("cannot start the async runtime");
            let direct = client_builder()
                .no_proxy()
                .tls_certs_only([])
                .build()
                .expect("cannot build the HTTP client");
            Net {
                rt,
                proxied: OnceLock::new(),
                direct,
            }
        })
    }
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
    /// The client for `url` (no proxy for loopback).
    pub fn client_for(&self, url: &reqwest::Url) -> &reqwest::Client {
        if is_loopback(url) {
            &self.direct
        } else {
            self.proxied.get_or_init(proxied_client)
        }
    }
}

/// Whether the URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The rules a provider's requests are held to.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The provider (for messages).
    pub provider: String,
    /// Hosts allowed besides loopback, lower-case.
    pub allowed_hosts: Vec<String>,
}

impl Policy {
    /// The descriptor's allow-list alone.
    pub fn of(desc: &ProviderDesc) -> Policy {
        Policy {
            provider: desc.id.clone(),
            allowed_hosts: desc.allowed_hosts.clone(),
        }
    }

    /// For a provider whose credential the user supplies (the `api_key` flow), also admit the
    /// host of every base URL the user configured for it: the values of the override variables
    /// it declares (from the environment or `<target>_base_url` in config.yaml) and `base_url`
    /// in config.yaml. Only what the user wrote counts: a base URL a server sent (a stored
    /// credential's) never widens the list, and a token a provider issued (OAuth) stays with the
    /// provider's own hosts whatever the configuration says.
    pub fn with_configured(
        mut self,
        desc: &ProviderDesc,
        values: &BTreeMap<String, String>,
    ) -> Policy {
        if desc.url_overrides.is_empty() || desc.flow != hermes_plugin_api::flow::API_KEY {
            return self;
        }
        let keys = desc.url_overrides.iter().map(|o| o.env.as_str()).chain([
            "base_url",
            "inference_base_url",
            "portal_base_url",
        ]);
        for key in keys {
            let Some(host) = values
                .get(key)
                .and_then(|v| reqwest::Url::parse(v.trim()).ok())
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            else {
                continue;
            };
            if !host.is_empty() && !self.allowed_hosts.contains(&host) {
                self.allowed_hosts.push(host);
            }
        }
        self
    }

    /// Check a redirect hop from `from` to `to`: the rules of [`Policy::check`], and no way
    /// back to this machine from a remote host. A remote server that could send hermes to
    /// `127.0.0.1` could make it post form bodies (codes, refresh tokens) to any local service.
    pub fn check_redirect(
        &self,
        from: &reqwest::Url,
        to: &reqwest::Url,
    ) -> Result<(), PluginError> {
        if is_loopback(to) && !is_loopback(from) {
            return Err(PluginError::new(
                kind::REFUSED,
                "request_refused",
                format!(
                    "refused a redirect from {} to {}: a remote host may not send hermes to this machine",
                    from.host_str().unwrap_or(""),
                    to.host_str().unwrap_or("")
                ),
            ));
        }
        self.check(to)
    }

    /// Check one URL (the first request or a redirect hop).
    pub fn check(&self, url: &reqwest::Url) -> Result<(), PluginError> {
        let refuse = |msg: String| Err(PluginError::new(kind::REFUSED, "request_refused", msg));
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let loopback = is_loopback(url);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return refuse(format!(
                    "refused plain http to {host}: only https is allowed (http only to loopback)"
                ))
            }
            other => return refuse(format!("refused a {other}: URL: only https is allowed")),
        }
        if !loopback && !self.allowed_hosts.contains(&host) {
            return refuse(format!(
                "refused a request to {host}: provider {} may only reach {}",
                self.provider,
                self.allowed_hosts.join(", ")
            ));
        }
        Ok(())
    }
}

fn transient(code: &str, msg: String) -> PluginError {
    PluginError::transient(code, msg)
}

fn classify(e: &reqwest::Error, host: &str) -> PluginError {
    if e.is_timeout() {
        transient("timeout", format!("request to {host} timed out"))
    } else if e.is_connect() {
        transient("network", format!("cannot connect to {host}"))
    } else if e.is_body() || e.is_decode() {
        transient(
            "truncated",
            format!("the response from {host} was cut short"),
        )
    } else {
        transient(
            "network",
            format!("the connection to {host} failed before a response"),
        )
    }
}

/// Make a request under `policy`. Used for plugin requests; blocks the calling thread, so it
/// must not be called from inside an async task.
pub fn http_blocking(policy: &Policy, req: HttpRequest) -> Result<HttpResponse, PluginError> {
    // The plugin ran before this call: the connection must not take a closed fd 0–2.
    crate::output::restore_stdio();
    let net = Net::get();
    net.runtime().block_on(http(net, policy, req))
}

async fn http(net: &Net, policy: &Policy, req: HttpRequest) -> Result<HttpResponse, PluginError> {
    let mut url = reqwest::Url::parse(&req.url)
        .map_err(|e| PluginError::new(kind::INVALID_INPUT, "bad_url", format!("not a URL: {e}")))?;
    policy.check(&url)?;
    let timeout = match req.timeout_ms {
        0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(ms).min(MAX_TIMEOUT),
    };
    let deadline = Instant::now() + timeout;
    let mut method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| PluginError::new(kind::INVALID_INPUT, "bad_method", "not an HTTP method"))?;
    let mut body: Vec<u8> = req.body.into_vec();
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|Tuple2(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for _hop in 0..=MAX_REDIRECTS {
        let host = url.host_str().unwrap_or("").to_string();
        let mut rb = net.client_for(&url).request(method.clone(), url.clone());
        for (k, v) in &headers {
            // Body framing is the host's business; a stale length would corrupt redirects.
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("host") {
                continue;
            }
            rb = rb.header(k.as_str(), v.as_str());
        }
        if !body.is_empty() {
            rb = rb.body(body.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let sent = Instant::now();
        let resp = match tokio::time::timeout(left, rb.send()).await {
            Err(_) => {
                let e = transient(
                    "timeout",
                    format!("request to {host} timed out after {} s", timeout.as_secs()),
                );
                log_request(method.as_str(), &url, Err(&e.message), sent.elapsed());
                return Err(e);
            }
            Ok(Err(e)) => {
                let e = classify(&e, &host);
                log_request(method.as_str(), &url, Err(&e.message), sent.elapsed());
                return Err(e);
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        log_request(method.as_str(), &url, Ok(status), sent.elapsed());
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(transient(
                    "bad_redirect",
                    format!("{host} answered {status} without a Location"),
                ));
            };
            let next = url.join(loc).map_err(|_| {
                transient(
                    "bad_redirect",
                    format!("{host} redirected to an invalid URL"),
                )
            })?;
            policy.check_redirect(&url, &next)?;
            if !matches!(status, 307 | 308) {
                method = reqwest::Method::GET;
                body.clear();
            }
            url = next;
            continue;
        }
        let resp_headers: RVec<Tuple2<RString, RString>> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some(Tuple2(
                    RString::from(k.as_str()),
                    RString::from(v.to_str().ok()?),
                ))
            })
            .collect();
        let cap = if status >= 400 {
            ERROR_BODY_CAP
        } else {
            BODY_CAP
        };
        let mut resp = resp;
        let mut buf: Vec<u8> = Vec::new();
        let mut truncated = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, resp.chunk()).await {
                Err(_) => {
                    return Err(transient(
                        "timeout",
                        format!("reading the response from {host} timed out"),
                    ))
                }
                Ok(Err(e)) => return Err(classify(&e, &host)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    let room = cap - buf.len();
                    if chunk.len() > room {
                        buf.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        return Ok(HttpResponse {
            status,
            headers: resp_headers,
            body: buf.into(),
            truncated,
            final_url: url.as_str().into(),
        });
    }
    Err(transient(
        "too_many_redirects",
        format!("more than {MAX_REDIRECTS} redirects"),
    ))
}

/// The host's services for one provider.
#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            provider: "p".into(),
            allowed_hosts: vec!["api.example.com".into()],
        }
    }

    #[test]
    fn https_to_an_allowed_host_passes() {
        policy()
            .check(&"https://api.example.com/x".parse().unwrap())
            .unwrap();
        policy()
            .check(&"http://127.0.0.1:9/x".parse().unwrap())
            .unwrap();
        policy()
            .check(&"http://localhost:9/x".parse().unwrap())
            .unwrap();
        policy()
            .check(&"http://[::1]:9/x".parse().unwrap())
            .unwrap();
    }

    #[test]
    fn only_configured_base_urls_widen_the_allow_list() {
        let mut desc = crate::plugins::descriptor::ProviderDesc {
            id: "p".into(),
            display_name: "P".into(),
            aliases: vec![],
            flow: "api_key".into(),
            api_mode: "chat_completions".into(),
            regions: vec![],
            models: vec![],
            aux_model: None,
            docs_url: String::new(),
            allowed_hosts: vec!["api.example.com".into()],
            url_overrides: vec![],
            refresh_skew_ms: 0,
            credential_env: vec![],
        };
        let values: BTreeMap<String, String> = [
            (
                "P_BASE_URL".to_string(),
                "https://LLM.Corp.example/v1".to_string(),
            ),
            (
                "base_url".to_string(),
                "https://other.example/v1".to_string(),
            ),
            (
                "region".to_string(),
                "https://not-a-url-key.example".to_string(),
            ),
        ]
        .into();
        // Without a declared override, configuration cannot widen the list.
        let p = Policy::of(&desc).with_configured(&desc, &values);
        assert!(p
            .check(&"https://llm.corp.example/v1".parse().unwrap())
            .is_err());
        desc.url_overrides
            .push(crate::plugins::descriptor::UrlOverrideDesc {
                env: "P_BASE_URL".into(),
                target: "inference".into(),
            });
        let p = Policy::of(&desc).with_configured(&desc, &values);
        p.check(
            &"https://llm.corp.example/v1/chat/completions"
                .parse()
                .unwrap(),
        )
        .unwrap();
        p.check(&"https://other.example/v1".parse().unwrap())
            .unwrap();
        // A token the provider issued never follows configuration to another host.
        desc.flow = "device_code".into();
        let p = Policy::of(&desc).with_configured(&desc, &values);
        assert!(p
            .check(&"https://llm.corp.example/v1".parse().unwrap())
            .is_err());
        desc.flow = "api_key".into();
        let p = Policy::of(&desc).with_configured(&desc, &values);
        assert!(p
            .check(&"https://not-a-url-key.example/".parse().unwrap())
            .is_err());
        assert!(p.check(&"https://evil.example/".parse().unwrap()).is_err());
    }

    #[test]
    fn a_remote_host_cannot_redirect_to_loopback() {
        let remote: reqwest::Url = "https://api.example.com/x".parse().unwrap();
        for to in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "https://127.0.0.2/x",
            "http://[::1]:9/x",
        ] {
            let e = policy()
                .check_redirect(&remote, &to.parse().unwrap())
                .unwrap_err();
            assert_eq!(e.kind, kind::REFUSED, "{to}");
            assert!(
                e.message.contains("may not send hermes to this machine"),
                "{}",
                e.message
            );
        }
        // Loopback to loopback (a local emulator or proxy) and remote to remote still work.
        let local: reqwest::Url = "http://127.0.0.1:8/x".parse().unwrap();
        policy()
            .check_redirect(&local, &"http://127.0.0.1:9/y".parse().unwrap())
            .unwrap();
        policy()
            .check_redirect(&remote, &"https://api.example.com/y".parse().unwrap())
            .unwrap();
    }

    #[test]
    fn logged_urls_carry_no_user_info_query_or_fragment() {
        let url: reqwest::Url = "https://user:pw@api.example.com:8443/v1/x?key=sk-secret#frag"
            .parse()
            .unwrap();
        assert_eq!(loggable_url(&url), "https://api.example.com:8443/v1/x?…");
        let url: reqwest::Url = "http://[::1]:9/oauth/token".parse().unwrap();
        assert_eq!(loggable_url(&url), "http://[::1]:9/oauth/token");
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let e = policy()
            .check(&"http://api.example.com/x".parse().unwrap())
            .unwrap_err();
        assert_eq!(e.kind, kind::REFUSED);
        assert!(e.message.contains("plain http"), "{}", e.message);
    }

    #[test]
    fn hosts_outside_the_allow_list_are_refused() {
        let e = policy()
            .check(&"https://evil.example.net/x".parse().unwrap())
            .unwrap_err();
        assert_eq!(e.kind, kind::REFUSED);
        assert!(e.message.contains("evil.example.net"));
        // A look-alike suffix is not the allowed host.
        assert!(policy()
            .check(&"https://api.example.com.evil.net/".parse().unwrap())
            .is_err());
        assert!(policy()
            .check(&"file:///etc/passwd".parse().unwrap())
            .is_err());
    }
}
