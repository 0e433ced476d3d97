//! Real servers on loopback for the integration tests: an HTTP server that serves recorded
//! Daily Papers responses the way the API pages them (and can fail in chosen ways), an SMTP
//! server (aiosmtpd, run as a child process) that stores what it receives, and a runner for the
//! real `paperboy` binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

/// The items of a recorded day, as JSON values.
pub fn fixture_items(date: &str) -> Vec<Value> {
    let body = std::fs::read(fixture(&format!("{date}.json"))).expect("fixture exists");
    serde_json::from_slice(&body).expect("fixture is JSON")
}

/// The email the first subscriber of `config` gets for the recorded day 2026-04-10, rendered
/// in this process (no database, no server), with the papers chosen for it.
pub fn render_recorded_day(config: &str) -> (paperboy::render::Rendered, paperboy::digest::Digest) {
    use paperboy::digest::DayList;
    let cfg = paperboy::config::Config::load_str(config, "test config").unwrap();
    let body = std::fs::read(fixture("2026-04-10.json")).unwrap();
    let papers = paperboy::source::parse_daily_papers(&body).unwrap();
    let sub = &cfg.subscribers[0];
    let digest =
        DayList::new(&papers).select(sub, &cfg.topics, &Default::default(), &Default::default());
    let by_id = paperboy::domain::papers_by_id(&papers);
    let links = paperboy::mail::UnsubscribeLinks::for_subscriber(&cfg, &sub.email.key());
    let rendered = paperboy::render::Renderer::new(&cfg.digest, &cfg.topics)
        .unwrap()
        .render(
            sub,
            chrono::NaiveDate::from_ymd_opt(2026, 4, 10).unwrap(),
            &digest,
            &by_id,
            links.visible(),
        )
        .unwrap();
    (rendered, digest)
}

// ------------------------------------------------------------------ HTTP: the Daily Papers API

/// How the fake API answers.
#[derive(Clone, Debug, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Every request answers this status.
    Status(u16),
    /// Answers after this delay.
    Slow(Duration),
    /// The body is cut in half.
    Truncated,
    /// The next `n` requests answer 429 with `Retry-After: secs`.
    RateLimited { n: usize, secs: u64 },
}

#[derive(Default)]
struct ApiState {
    days: HashMap<String, Vec<Value>>,
    mode: Mode,
    /// Requests left in `mode` before it reverts to Normal (None: for good).
    mode_left: Option<usize>,
    requests: Vec<String>,
}

#[derive(Clone)]
pub struct HfApi {
    state: Arc<Mutex<ApiState>>,
    pub base_url: String,
    _task: Arc<tokio::task::JoinHandle<()>>,
}

#[derive(serde::Deserialize)]
struct ApiQuery {
    date: Option<String>,
    limit: Option<usize>,
    p: Option<usize>,
}

async fn daily_papers(
    State(state): State<Arc<Mutex<ApiState>>>,
    Query(q): Query<ApiQuery>,
    uri: axum::http::Uri,
) -> Response {
    let (mode, page) = {
        let mut s = state.lock().unwrap();
        s.requests.push(uri.to_string());
        let mode = s.mode.clone();
        if let Some(left) = s.mode_left {
            s.mode_left = left.checked_sub(1).filter(|l| *l > 0);
            if s.mode_left.is_none() {
                s.mode = Mode::Normal;
            }
        }
        if let Mode::RateLimited { n, secs } = s.mode {
            s.mode = if n > 1 {
                Mode::RateLimited { n: n - 1, secs }
            } else {
                Mode::Normal
            };
        }
        // Like the live API: default page 50, at most 100, pages from 0, [] past the end.
        let limit = q.limit.unwrap_or(50).min(100);
        let p = q.p.unwrap_or(0);
        let items = q
            .date
            .as_ref()
            .and_then(|d| s.days.get(d))
            .cloned()
            .unwrap_or_default();
        let page: Vec<Value> = items.into_iter().skip(p * limit).take(limit).collect();
        (mode, page)
    };
    let body = serde_json::to_string(&page).unwrap();
    match mode {
        Mode::Normal => ([("content-type", "application/json")], body).into_response(),
        Mode::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            "{\"error\":\"Internal Error\"}",
        )
            .into_response(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            ([("content-type", "application/json")], body).into_response()
        }
        Mode::Truncated => {
            let cut = body[..body.len() / 2].to_string();
            ([("content-type", "application/json")], cut).into_response()
        }
        Mode::RateLimited { secs, .. } => {
            let mut h = HeaderMap::new();
            h.insert("retry-after", secs.to_string().parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, h, "slow down").into_response()
        }
    }
}

impl HfApi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ApiState::default()));
        let app = axum::Router::new()
            .route("/api/daily_papers", axum::routing::get(daily_papers))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            state,
            base_url: format!("http://{addr}"),
            _task: Arc::new(task),
        }
    }

    pub fn serve_day(&self, date: &str, items: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .days
            .insert(date.to_string(), items);
    }

    pub fn set_mode(&self, mode: Mode) {
        let mut s = self.state.lock().unwrap();
        s.mode = mode;
        s.mode_left = None;
    }

    /// The next `n` requests answer in `mode`, then the API recovers.
    pub fn fail_next(&self, mode: Mode, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.mode = mode;
        s.mode_left = Some(n);
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

// ------------------------------------------------------------------ SMTP: aiosmtpd

/// A python3 that can import aiosmtpd and dkim (dkimpy): the system one when it can, else a
/// virtualenv under target/ into which they are installed once.
pub fn python_for_tests() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let ok = |py: &Path| {
            Command::new(py)
                .args(["-c", "import aiosmtpd, dkim"])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let system = PathBuf::from("python3");
        if ok(&system) {
            return system;
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd-venv");
        let py = venv.join("bin/python3");
        if !ok(&py) {
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 is needed for the SMTP test server");
            assert!(st.success(), "python3 -m venv failed");
            let st = Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "aiosmtpd==1.4.6",
                    "dkimpy==1.1.8",
                ])
                .status()
                .expect("pip runs");
            assert!(st.success(), "pip install aiosmtpd dkimpy failed");
        }
        py
    })
    .clone()
}

/// A test certificate authority and a leaf for localhost / 127.0.0.1, made with openssl.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
}

impl TestCerts {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is needed to make test certificates");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=paperboy test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.path().join("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
        ]);
        Self { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

#[derive(Default, Clone)]
pub struct SmtpOptions {
    pub starttls: bool,
    pub implicit_tls: bool,
    pub auth: Option<(String, String)>,
    pub reject: Vec<String>,
    /// `SUBSTR=KIND`: 451once, 421once, 550, dropdata-once, stall-once.
    pub faults: Vec<String>,
    pub stall_seconds: Option<f64>,
    /// Refuse connections for this many seconds after start.
    pub refuse_for: Option<f64>,
    /// Wait this long after storing each message before answering 250.
    pub delay_ms: Option<u64>,
    /// Offer PIPELINING.
    pub pipelining: bool,
    /// AUTH mechanisms not offered (`PLAIN`, `LOGIN`).
    pub auth_exclude: Vec<String>,
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
    pub certs: Option<TestCerts>,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new(python_for_tests());
        cmd.arg(script).arg("--maildir").arg(maildir.path());
        let certs = (opts.starttls || opts.implicit_tls).then(TestCerts::generate);
        if let Some(c) = &certs {
            cmd.arg("--tls-cert")
                .arg(c.dir.path().join("leaf.pem"))
                .arg("--tls-key")
                .arg(c.dir.path().join("leaf.key"));
            cmd.arg(if opts.implicit_tls {
                "--implicit-tls"
            } else {
                "--require-tls"
            });
        }
        if let Some((u, p)) = &opts.auth {
            cmd.args(["--auth-user", u, "--auth-password", p]);
        }
        for r in &opts.reject {
            cmd.args(["--reject", r]);
        }
        for f in &opts.faults {
            cmd.args(["--fault", f]);
        }
        if let Some(s) = opts.stall_seconds {
            cmd.args(["--stall-seconds", &s.to_string()]);
        }
        if let Some(s) = opts.refuse_for {
            cmd.args(["--refuse-for", &s.to_string()]);
        }
        if let Some(ms) = opts.delay_ms {
            cmd.args(["--delay-ms", &ms.to_string()]);
        }
        if opts.pipelining {
            cmd.arg("--pipelining");
        }
        for m in &opts.auth_exclude {
            cmd.args(["--auth-exclude", m]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("SMTP test server said {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            port,
            maildir,
            certs,
        }
    }

    /// Every message received so far, parsed back from its raw bytes: (raw, envelope line).
    pub fn received(&self) -> Vec<Received> {
        complete_lines(&self.maildir.path().join("envelopes.jsonl"))
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let raw =
                    std::fs::read(self.maildir.path().join(v["file"].as_str().unwrap())).unwrap();
                Received {
                    raw,
                    mail_from: v["mail_from"].as_str().unwrap().to_string(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    tls: v["tls"].as_bool().unwrap(),
                    auth_user: v["auth_user"].as_str().map(str::to_string),
                }
            })
            .collect()
    }
}

/// The whole lines of a JSON-lines file the test server may be writing right now: a line
/// without its newline yet is left for the next read.
fn complete_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole.lines().map(str::to_string).collect()
}

impl SmtpServer {
    /// The faults that fired: (address, kind).
    pub fn fault_events(&self) -> Vec<(String, String)> {
        complete_lines(&self.maildir.path().join("events.jsonl"))
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["addr"].as_str().unwrap().to_string(),
                    v["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// How many messages each recipient received.
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.received() {
            for to in r.rcpt_tos {
                *out.entry(to).or_default() += 1;
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Received {
    pub raw: Vec<u8>,
    /// The envelope: MAIL FROM and RCPT TO.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    pub auth_user: Option<String>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parseable message")
    }
}

// ------------------------------------------------------------------ skipping

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or `false`), where every
/// tool, data set and server the tests need is installed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The one way a test (or a part of one) skips because `what` cannot run here, `why` saying
/// what is missing and how to provide it: a line on stderr, or, in CI, a failure, since a
/// skip there would hide a broken install step. The caller returns (or leaves the part out)
/// after it.
pub fn skip_or_fail_in_ci(what: &str, why: &str) {
    assert!(!in_ci(), "{what} must run in CI, but {why}");
    eprintln!("SKIPPED {what}: {why}");
}

// ------------------------------------------------------------------ the database

/// Where the PostgreSQL server for the tests is (a URL whose user may create databases);
/// the tests that need it skip, saying so, where it is unset (and fail in CI).
pub const POSTGRES_ENV: &str = "PAPERBOY_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The backend of the test running in this task (SQLite where unset).
    static BACKEND: Backend;
}

pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Runs a test with every `Paperboy` it makes on a fresh PostgreSQL database of its own, or
/// says it skipped (fails in CI).
pub async fn on_postgres(name: &str, test: impl std::future::Future<Output = ()>) {
    if postgres_url().is_none() {
        skip_or_fail_in_ci(
            &format!("{name} on PostgreSQL"),
            &format!(
                "{POSTGRES_ENV} is unset (set it, e.g. to postgres://postgres@127.0.0.1:5432/test)"
            ),
        );
        return;
    }
    BACKEND.scope(Backend::Postgres, test).await
}

/// Each listed test function (`async fn name()`, not itself a test) becomes two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name().await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                $crate::support::on_postgres(stringify!($name), super::$name()).await
            })*
        }
    };
}

/// Runs `f` to completion on a runtime of its own (for set-up and clean-up outside async).
fn block_on_own_runtime<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// A database of its own on the test PostgreSQL server, dropped with this value.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

/// Runs `sql` (statements separated by `;`) on the database at `url`, on a runtime of its own
/// (for set-up and clean-up outside async); what went wrong, connecting or running.
fn admin_sql(url: &str, sql: String) -> Result<(), String> {
    use sqlx::Connection;
    let url = url.to_string();
    block_on_own_runtime(async move {
        let mut c = sqlx::PgConnection::connect(&url)
            .await
            .map_err(|e| format!("connecting to {POSTGRES_ENV}: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
}

impl PgDatabase {
    pub fn create() -> Self {
        let admin = postgres_url().expect("PAPERBOY_TEST_POSTGRES_URL is set");
        let name = format!("paperboy_test_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&admin, format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let mut url = url::Url::parse(&admin).expect("PAPERBOY_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        Self {
            admin,
            name,
            url: url.to_string(),
        }
    }

    /// A login role of its own that may create tables in this database's `public` schema but
    /// not temporary ones: TEMP is revoked from PUBLIC on this database (and only here), as
    /// some servers do. Dropped, with all it owns here, with the value returned.
    pub fn role_without_temp(&self) -> PgRole {
        let name = format!("paperboy_test_role_{}", uuid::Uuid::new_v4().simple());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let sql = format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}';
             REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC;
             GRANT CREATE ON SCHEMA public TO {name};",
            db = self.name
        );
        admin_sql(&self.url, sql).unwrap_or_else(|e| panic!("creating role {name}: {e}"));
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        PgRole {
            admin_of_db: self.url.clone(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = admin_sql(&self.admin, sql);
    }
}

/// A role made for one test (see [`PgDatabase::role_without_temp`]): its URL logs in as it.
/// Dropped before its database (declare it after), with everything it owns there.
pub struct PgRole {
    admin_of_db: String,
    name: String,
    pub url: String,
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let sql = format!("DROP OWNED BY {0} CASCADE; DROP ROLE {0};", self.name);
        let _ = admin_sql(&self.admin_of_db, sql);
    }
}

/// Runs `$body` with `$pool` connected to the database at `$url` (SQLite or PostgreSQL).
macro_rules! on_test_db {
    ($url:expr, $pool:ident => $body:expr) => {
        if $url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect($url).await.unwrap();
            let r = $body;
            $pool.close().await;
            r
        } else {
            let $pool = sqlx::SqlitePool::connect($url).await.unwrap();
            let r = $body;
            $pool.close().await;
            r
        }
    };
}

/// Runs one statement on the test's database; rows affected.
pub async fn db_execute(url: &str, sql: &str) -> u64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    on_test_db!(url, pool => sqlx::query(sql).execute(&pool).await.unwrap().rows_affected())
}

/// The one number a query such as `SELECT COUNT(*) …` answers, on the test's database.
pub async fn db_count(url: &str, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    on_test_db!(url, pool => sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap())
}

// ------------------------------------------------------------------ ports and browsers

/// A loopback port that is free now (for a listener the test's config names).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Chromium (or Chrome): `PAPERBOY_CHROMIUM`, else the first on the PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PAPERBOY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(PathBuf::from)
}

// ------------------------------------------------------------------ the paperboy binary

/// A working directory with a config file, in which the real binary runs; on the backend of
/// the test (its config's SQLite file, or a PostgreSQL database of its own, given to the
/// binary as PAPERBOY__DATABASE__URL).
pub struct Paperboy {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

pub struct RunOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Paperboy {
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("paperboy.toml"), config).unwrap();
        let pg = (backend() == Backend::Postgres).then(PgDatabase::create);
        Self { dir, pg }
    }

    pub fn set_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("paperboy.toml"), config).unwrap();
    }

    /// The database the binary uses (for SQLite: `paperboy.db` in the working directory, as
    /// the tests' configs say).
    pub fn db_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("paperboy.db").display()),
        }
    }

    /// The binary with this config and database, in this directory, with a clean
    /// environment (no PAPERBOY__ overrides from the caller's).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_paperboy"));
        cmd.arg("--config")
            .arg(self.dir.path().join("paperboy.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .env_remove("PAPERBOY_CONFIG");
        for (k, _) in std::env::vars() {
            if k.starts_with("PAPERBOY__") {
                cmd.env_remove(k);
            }
        }
        if let Some(pg) = &self.pg {
            cmd.env("PAPERBOY__DATABASE__URL", &pg.url);
        }
        cmd
    }

    /// The binary started with `args` (`run`, say) and left running, its log lines piped on
    /// stderr (uncoloured), killed when dropped.
    #[allow(dead_code)] // not every test binary keeps one running
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("paperboy starts")
    }

    pub async fn run(&self, args: &[&str]) -> RunOutput {
        self.run_with_env(args, &[]).await
    }

    /// `paperboy send` of a recorded day (`tests/fixtures/hf/DAY.json`) under its own date.
    pub async fn send_recorded_day(&self, day: &str) -> RunOutput {
        let file = fixture(&format!("{day}.json"));
        let file = file.to_str().expect("the fixture path is UTF-8");
        self.run(&["send", "--date", day, "--source-file", file])
            .await
    }

    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> RunOutput {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let out: Output = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("paperboy finished within 120 s")
            .expect("paperboy ran");
        RunOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The [smtp] section for a test server.
pub fn smtp_section(server: &SmtpServer, opts: &SmtpOptions) -> String {
    let mut s = format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\nfrom = \"Paperboy Test <digest@paperboy.test>\"\n\
         reply_to = \"owner@paperboy.test\"\ntimeout = \"10s\"\nhello_name = \"paperboy.test\"\n",
        server.port
    );
    s.push_str(match (opts.starttls, opts.implicit_tls) {
        (_, true) => "security = \"tls\"\n",
        (true, _) => "security = \"starttls\"\n",
        _ => "security = \"none\"\n",
    });
    if let Some(c) = &server.certs {
        s.push_str(&format!("ca_file = {:?}\n", c.ca().display().to_string()));
    }
    if let Some((u, p)) = &opts.auth {
        s.push_str(&format!("username = {u:?}\npassword = {p:?}\n"));
    }
    s
}

/// 2026-04-10's recorded papers (tests/fixtures/hf), read as the source reads them.
#[allow(dead_code)] // not every test binary reads them
pub async fn recorded_papers_of_2026_04_10() -> (chrono::NaiveDate, Vec<paperboy::domain::Paper>) {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    let papers = paperboy::source::HfSource::from_file(fixture("2026-04-10.json"))
        .fetch_day(date)
        .await
        .unwrap();
    (date, papers)
}

/// A pending delivery for `subscriber` of one paper under topic "t", as a plan writes it (its
/// Message-ID from the address).
#[allow(dead_code)] // not every test binary plans by hand
pub fn pending_delivery(
    subscriber: String,
    paper: paperboy::domain::ArxivId,
) -> paperboy::store::NewDelivery {
    paperboy::store::NewDelivery {
        message_id: format!("<{subscriber}>"),
        subscriber: paperboy::domain::EmailAddress::parse(&subscriber)
            .unwrap()
            .key(),
        digest: paperboy::digest::Digest {
            groups: vec![paperboy::digest::DigestGroup {
                topic: "t".into(),
                papers: vec![paper],
            }],
        },
        status: paperboy::store::DeliveryStatus::Pending,
        note: None,
        not_before: None,
    }
}
