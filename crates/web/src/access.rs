//! Private deployments (`--access-keys FILE`): every page and API call needs an access key —
//! programs send it as `Authorization: Bearer <key>`, browsers sign in once at `/login` and
//! keep a session cookie. Health, readiness and metrics keep their own rules; the login page
//! and the stylesheet are open. Inside, job ids stay capabilities and owner tokens still
//! guard changes: a key lets one in, it does not make one the owner of every job.
//!
//! The file holds one key per line, `<name> <sha256 of the key, hex>` (`#` starts a comment;
//! `darkroom access-key NAME` makes a key and its line). Only hashes are stored. The file
//! is read again when it changes (looked at once a second at most), so keys are added and
//! revoked without a restart, on every web process that reads the same file.
//!
//! A session cookie is `<name>.<expiry>.<HMAC-SHA256 of the name, the key's hash and the
//! expiry, keyed with the session secret>`: any web process with the file and the secret
//! (`--session-secret`) can check it, the keys file alone cannot forge one, and revoking or
//! rotating the key ends the sessions opened with it.

use crate::error::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use darkroom_core::ErrorCode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub const SESSION_COOKIE: &str = "darkroom_session";
/// How long a browser stays signed in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the keys file is looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum AccessKeysError {
    #[error("cannot read the access keys file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: expected `<name> <64 hex digits: the key's SHA-256>`")]
    Line { path: PathBuf, line: usize },
    #[error("{path} holds no key: nobody could get in (add one with `darkroom access-key NAME`)")]
    Empty { path: PathBuf },
    #[error("{path} line {line}: the name {name:?} is used twice; give each key a name of its own")]
    Duplicate { path: PathBuf, line: usize, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyEntry {
    name: String,
    sha256: [u8; 32],
}

#[derive(Debug)]
struct Loaded {
    entries: Arc<Vec<KeyEntry>>,
    /// The SHA-256 of the file as last read: a change is noticed whatever the file
    /// system's timestamp granularity.
    content: [u8; 32],
    checked: Instant,
}

/// The access keys of a private deployment, kept in step with their file.
pub struct AccessKeys {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// What session cookies are signed with.
    session_secret: Vec<u8>,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeys").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The SHA-256 of a presented key, as stored in the file.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

fn parse(path: &Path, text: &str) -> Result<Vec<KeyEntry>, AccessKeysError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || AccessKeysError::Line { path: path.to_owned(), line: index + 1 };
        let (name, hash) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let bytes = hex::decode(hash.trim()).map_err(|_| bad())?;
        let sha256: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        if name.contains('.') {
            return Err(bad()); // the session cookie separates fields with '.'
        }
        if entries.iter().any(|entry: &KeyEntry| entry.name == name) {
            return Err(AccessKeysError::Duplicate { path: path.to_owned(), line: index + 1, name: name.to_owned() });
        }
        entries.push(KeyEntry { name: name.to_owned(), sha256 });
    }
    if entries.is_empty() {
        return Err(AccessKeysError::Empty { path: path.to_owned() });
    }
    Ok(entries)
}

/// The file's bytes, and their SHA-256.
fn read_file(path: &Path) -> Result<(String, [u8; 32]), AccessKeysError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| AccessKeysError::Read { path: path.to_owned(), source })?;
    let content = Sha256::digest(text.as_bytes()).into();
    Ok((text, content))
}

impl AccessKeys {
    /// Reads the file; fails (the process should not start) if it is unreadable or empty.
    /// Sessions are signed with `session_secret`: every web process of a deployment needs
    /// the same one for a browser's session to hold on all of them.
    pub fn load(path: impl Into<PathBuf>, session_secret: &[u8]) -> Result<Self, AccessKeysError> {
        let path = path.into();
        let (text, content) = read_file(&path)?;
        let entries = parse(&path, &text)?;
        tracing::info!(path = %path.display(), keys = entries.len(), "private deployment: access keys loaded");
        Ok(Self {
            path,
            loaded: Mutex::new(Loaded { entries: Arc::new(entries), content, checked: Instant::now() }),
            session_secret: session_secret.to_vec(),
        })
    }

    /// The keys now: the file is read again if it changed. A file that became unreadable
    /// or invalid keeps the keys last read (logged), so a half-written edit locks nobody out.
    fn entries(&self) -> Arc<Vec<KeyEntry>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.checked.elapsed() >= RELOAD_EVERY {
            loaded.checked = Instant::now();
            match read_file(&self.path) {
                Ok((_, content)) if content == loaded.content => {}
                Ok((text, content)) => {
                    loaded.content = content;
                    match parse(&self.path, &text) {
                        Ok(entries) => {
                            tracing::info!(path = %self.path.display(), keys = entries.len(), "access keys reloaded");
                            loaded.entries = Arc::new(entries);
                        }
                        // Emptied: the operator revoked every key, so nobody gets in.
                        Err(AccessKeysError::Empty { .. }) => {
                            tracing::warn!(path = %self.path.display(), "the access keys file is empty: nobody is let in");
                            loaded.entries = Arc::new(Vec::new());
                        }
                        // A half-written or mistyped edit locks nobody out.
                        Err(error) => {
                            tracing::error!(error.message = %error, "keeping the access keys last read until the file is fixed");
                        }
                    }
                }
                // Deleted: revoked too. (Other read errors keep the keys: a passing fault
                // of the file system must not lock everyone out.)
                Err(AccessKeysError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    if !loaded.entries.is_empty() {
                        tracing::warn!(path = %self.path.display(), "the access keys file is gone: nobody is let in");
                    }
                    loaded.entries = Arc::new(Vec::new());
                    loaded.content = [0; 32];
                }
                Err(error) => {
                    tracing::error!(error.message = %error, "keeping the access keys last read until the file can be read");
                }
            }
            metrics::gauge!("darkroom_access_keys").set(loaded.entries.len() as f64);
        }
        loaded.entries.clone()
    }

    /// The name of the key `presented` is, if it is one.
    pub fn check_key(&self, presented: &str) -> Option<String> {
        let hash = key_hash(presented);
        // Every entry is compared, each in constant time.
        let mut found = None;
        for entry in self.entries().iter() {
            let difference = entry.sha256.iter().zip(hash.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if difference == 0 {
                found = Some(entry.name.clone());
            }
        }
        found
    }

    /// A session cookie value for the key named `name`, valid until `expires` (Unix seconds).
    pub fn session_for(&self, name: &str, expires: u64) -> Option<String> {
        let entries = self.entries();
        let entry = entries.iter().find(|entry| entry.name == name)?;
        let mac = self.session_mac(entry, expires);
        Some(format!("{name}.{expires}.{}", hex::encode(mac.finalize().into_bytes())))
    }

    /// Whether a session cookie value is valid now (its key still listed, not expired).
    pub fn check_session(&self, value: &str) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some(name), Some(expires), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let (Ok(expires), Ok(signature)) = (expires.parse::<u64>(), hex::decode(signature)) else { return false };
        let now = unix_now();
        // Never longer than a session lasts, whatever a cookie claims.
        if expires < now || expires > now + SESSION_LIFETIME.as_secs() + 60 {
            return false;
        }
        let entries = self.entries();
        let Some(entry) = entries.iter().find(|entry| entry.name == name) else { return false };
        self.session_mac(entry, expires).verify_slice(&signature).is_ok()
    }

    /// The MAC of a session: keyed with the session secret (not derivable from the keys
    /// file), over the key's name and hash (so it ends with that key) and the expiry.
    fn session_mac(&self, entry: &KeyEntry, expires: u64) -> Hmac<Sha256> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.session_secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(entry.name.as_bytes());
        mac.update(b".");
        mac.update(&entry.sha256);
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// Routes open without a key: the sign-in page, what it needs to render, and the
/// operator routes (which have their own checks).
fn is_open(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/healthz" | "/readyz" | "/metrics")
        || path == "/static/app.css"
        || path == "/static/favicon.svg"
}

/// The access key a request presents as `Authorization: Bearer <key>`, if any.
pub fn bearer_key(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    headers
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// Whether the request carries a valid key or session.
fn is_let_in(keys: &AccessKeys, request: &ServiceRequest) -> bool {
    if let Some(key) = bearer_key(request.headers()) {
        return keys.check_key(key).is_some();
    }
    request.cookie(SESSION_COOKIE).is_some_and(|cookie| keys.check_session(cookie.value()))
}

/// The middleware: in a private deployment, refuses whoever has no key — API clients with
/// 401, browsers by sending them to sign in.
pub async fn require_access(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let keys = request.app_data::<actix_web::web::Data<crate::AppState>>().and_then(|state| state.access_keys.clone());
    let Some(keys) = keys else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    if is_open(request.path()) || is_let_in(&keys, &request) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let wants_page = request.method() == actix_web::http::Method::GET
        && !request.path().starts_with("/api/")
        && request
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    let response = if wants_page {
        let next_path = request.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        actix_web::HttpResponse::SeeOther()
            .insert_header(("Location", format!("/login?next={}", percent_encode(&next_path))))
            .finish()
    } else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "this darkroom is private: send an access key as `Authorization: Bearer <key>`, or sign in at /login",
        )
        .error_response();
        response.headers_mut().insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer realm=\"darkroom\""),
        );
        response
    };
    Ok(request.into_response(response).map_into_right_body())
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after signing in: only a path of this site (never `//elsewhere`).
/// Browsers drop tabs and newlines from URLs and read `\\` as `/`, so `next` is a path of
/// this site only if it is made of plain URL characters, starts with one `/` and is not
/// `//host`.
pub fn safe_next(next: Option<&str>) -> String {
    let plain = |path: &str| path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~?=&%+:@!$'()*,;".contains(&b));
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && plain(path) => path.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_file(text: &str) -> (tempfile::NamedTempFile, AccessKeys) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let keys = AccessKeys::load(file.path(), b"session-secret").unwrap();
        (file, keys)
    }

    fn line(name: &str, key: &str) -> String {
        format!("{name} {}\n", hex::encode(key_hash(key)))
    }

    #[test]
    fn keys_are_checked_by_hash_and_sessions_by_their_key() {
        let (_file, keys) = keys_file(&format!("# comment\n{}\n{}", line("shop", "k1-secret"), line("school", "k2")));
        assert_eq!(keys.check_key("k1-secret").as_deref(), Some("shop"));
        assert_eq!(keys.check_key("k1-secreT"), None);
        let expires = unix_now() + 60;
        let session = keys.session_for("school", expires).unwrap();
        assert!(keys.check_session(&session));
        assert!(!keys.check_session(&session.replace("school", "shop")), "bound to its key");
        assert!(!keys.check_session(&keys.session_for("school", unix_now() - 1).unwrap()), "expired");
        assert!(!keys.check_session("school.99999999999.00"));
        let far = unix_now() + 365 * 24 * 3600;
        assert!(!keys.check_session(&keys.session_for("school", far).unwrap()), "no session outlives its lifetime");
        // The keys file alone does not make a session: the MAC needs the session secret.
        let forged_with_file = {
            let entry = &keys.entries()[1];
            let mut mac = Hmac::<Sha256>::new_from_slice(&entry.sha256).unwrap();
            mac.update(format!("school.{expires}").as_bytes());
            format!("school.{expires}.{}", hex::encode(mac.finalize().into_bytes()))
        };
        assert!(!keys.check_session(&forged_with_file));
        assert!(!keys.check_session("garbage"));
    }

    #[test]
    fn the_file_is_read_again_when_it_changes_and_a_bad_edit_keeps_the_old_keys() {
        let (file, keys) = keys_file(&line("old", "old-key"));
        let session = keys.session_for("old", unix_now() + 60).unwrap();
        // Rotation: the new key in, the old one out.
        std::fs::write(file.path(), line("new", "new-key")).unwrap();
        keys.loaded.lock().unwrap().checked = Instant::now() - RELOAD_EVERY;
        assert_eq!(keys.check_key("new-key").as_deref(), Some("new"));
        assert_eq!(keys.check_key("old-key"), None);
        assert!(!keys.check_session(&session), "the revoked key's sessions end");
        // A broken edit is logged and ignored.
        std::fs::write(file.path(), "not a key line").unwrap();
        keys.loaded.lock().unwrap().checked = Instant::now() - RELOAD_EVERY;
        assert_eq!(keys.check_key("new-key").as_deref(), Some("new"));
        // Emptied or deleted: every key is revoked.
        std::fs::write(file.path(), "# nobody\n").unwrap();
        keys.loaded.lock().unwrap().checked = Instant::now() - RELOAD_EVERY;
        assert_eq!(keys.check_key("new-key"), None);
        std::fs::write(file.path(), line("new", "new-key")).unwrap();
        keys.loaded.lock().unwrap().checked = Instant::now() - RELOAD_EVERY;
        assert_eq!(keys.check_key("new-key").as_deref(), Some("new"));
        std::fs::remove_file(file.path()).unwrap();
        keys.loaded.lock().unwrap().checked = Instant::now() - RELOAD_EVERY;
        assert_eq!(keys.check_key("new-key"), None);
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "shop nothex\n").unwrap();
        assert!(matches!(AccessKeys::load(file.path(), b"s"), Err(AccessKeysError::Line { line: 1, .. })));
        std::fs::write(file.path(), "# nothing\n").unwrap();
        assert!(matches!(AccessKeys::load(file.path(), b"s"), Err(AccessKeysError::Empty { .. })));
        std::fs::write(file.path(), format!("{}{}", line("shop", "a"), line("shop", "b"))).unwrap();
        assert!(matches!(AccessKeys::load(file.path(), b"s"), Err(AccessKeysError::Duplicate { line: 2, .. })));
    }

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(safe_next(Some("/jobs/abc?x=1")), "/jobs/abc?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/", "browsers drop the tab");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
