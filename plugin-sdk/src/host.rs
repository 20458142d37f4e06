//! The host's services with typed helpers: [`Host`], and the [`Request`] builder for HTTP with
//! headers, forms, JSON and timeouts.

use std::sync::Arc;

use abi_stable::std_types::{RVec, Tuple2};
use hermes_plugin_api::{HostBox, HttpRequest, HttpResponse, PluginError, log_level};

/// The host's services with typed helpers. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostBox>,
}

impl Host {
    /// Wrap the services the host passed to [`crate::Plugin::provider`].
    pub fn new(inner: HostBox) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
    /// Send `request` through the host (its allow-list, https rule and size caps apply).
    pub fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        self.inner.http(request).into_result()
    }
    /// A request to build and [`send`](Request::send).
    ///
    /// ```
    /// # let fake = hermes_plugin_sdk::testkit::FakeHost::new(0);
    /// # fake.on_request(|_| hermes_plugin_sdk::testkit::Reply::json(200, "{}"));
    /// # let host = fake.sdk_host();
    /// let resp = host
    ///     .post("https://api.example.com/oauth/token")
    ///     .header("accept", "application/json")
    ///     .form(&[("grant_type", "refresh_token"), ("refresh_token", "rt-…")])
    ///     .timeout_ms(15_000)
    ///     .send()?;
    /// # assert_eq!(fake.requests()[0].timeout_ms, 15_000);
    /// # Ok::<(), hermes_plugin_sdk::PluginError>(())
    /// ```
    pub fn request(&self, method: &str, url: &str) -> Request<'_> {
        Request {
            host: self,
            req: HttpRequest {
                method: method.into(),
                url: url.into(),
                headers: RVec::new(),
                body: RVec::new(),
                timeout_ms: 0,
            },
        }
    }
    /// A `GET` request to build.
    pub fn get(&self, url: &str) -> Request<'_> {
        self.request("GET", url)
    }
    /// A `POST` request to build.
    pub fn post(&self, url: &str) -> Request<'_> {
        self.request("POST", url)
    }
    /// `POST` a form (fields in the given order) with extra headers and the host's default
    /// timeout (15 s). For another timeout use [`Host::post`] with
    /// [`Request::timeout_ms`].
    pub fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, PluginError> {
        let mut req = self.post(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.form(fields).send()
    }
    /// The current time, unix ms.
    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    /// `n` cryptographically random bytes from the host (seeded by the testkit's fake).
    pub fn random_bytes(&self, n: usize) -> Vec<u8> {
        self.inner.random_bytes(n as u32).into_vec()
    }
    /// A configuration value (declared URL override env var or `providers.<id>.<key>`).
    pub fn config(&self, key: &str) -> Option<String> {
        self.inner
            .config_get(key.into())
            .into_option()
            .map(|s| s.into_string())
            .filter(|s| !s.is_empty())
    }
    /// Log a line at `level` (one of [`log_level`]). Never log secrets: `hermes plugins check`
    /// plants fake ones and fails a plugin whose log lines contain them.
    pub fn log(&self, level: u32, msg: &str) {
        self.inner.log(level, msg.into());
    }
    /// [`Host::log`] at error level (shown with `-v`).
    pub fn error(&self, msg: &str) {
        self.log(log_level::ERROR, msg);
    }
    /// [`Host::log`] at warn level (shown with `-v`).
    pub fn warn(&self, msg: &str) {
        self.log(log_level::WARN, msg);
    }
    /// [`Host::log`] at info level (shown with `-v`).
    pub fn info(&self, msg: &str) {
        self.log(log_level::INFO, msg);
    }
    /// [`Host::log`] at debug level (shown with `-vv`).
    pub fn debug(&self, msg: &str) {
        self.log(log_level::DEBUG, msg);
    }
}

/// An HTTP request being built; see [`Host::request`]. Nothing is sent until
/// [`send`](Request::send).
#[must_use = "a request does nothing until it is sent"]
pub struct Request<'a> {
    host: &'a Host,
    req: HttpRequest,
}

impl Request<'_> {
    /// Adds a header (sent in the order added).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.req.headers.push(Tuple2(name.into(), value.into()));
        self
    }
    /// An `application/x-www-form-urlencoded` body of `fields`, in order.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(fields).into_bytes())
    }
    /// A JSON body (already serialised).
    pub fn json(self, body: &str) -> Self {
        self.header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
    }
    /// A raw body, sent without a content type unless a header says one.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.req.body = body.into();
        self
    }
    /// The total timeout in ms (0, the default: the host's 15 s; the host caps it at 120 s).
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.req.timeout_ms = ms;
        self
    }
    /// Sends it through the host (allow-list, https rule, size caps apply).
    pub fn send(self) -> Result<HttpResponse, PluginError> {
        self.host.http(self.req)
    }
}

/// `application/x-www-form-urlencoded` encoding of ordered fields.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}
