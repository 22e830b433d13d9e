//! A throwaway PostgreSQL server for tests: `initdb` in a temporary
//! directory, started with `pg_ctl` on a free loopback port (TCP on
//! 127.0.0.1 only, its Unix socket in the temporary directory), trust
//! authentication, stopped and deleted on drop. [`PgServer::start_with`]
//! serves TLS only, with a certificate made at test time.
//!
//! The server binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<major>/bin/`, newest major first), or from the
//! directory in `SLAPROBE_PG_BIN`, or from `PATH`. PostgreSQL refuses to run
//! as root, so when the tests run as root the server commands run as the
//! `postgres` user (created by the package) through `runuser`, and the
//! temporary directory is handed to that user. The client side (`psql`)
//! connects over TCP as the `postgres` database user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::procs::free_port;

/// The OS user that runs the server when the tests run as root.
const OS_USER: &str = "postgres";

/// Where the PostgreSQL server binaries are, or why none were found.
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SLAPROBE_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("pg_ctl").exists() {
            Ok(dir)
        } else {
            Err(format!("SLAPROBE_PG_BIN={} has no pg_ctl", dir.display()))
        };
    }
    // Debian: /usr/lib/postgresql/<major>/bin; the newest major wins.
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("pg_ctl").exists() && d.join("initdb").exists())
        .ok_or_else(|| {
            "PostgreSQL server binaries not found (initdb, pg_ctl): install the Debian package `postgresql` \
             (they land in /usr/lib/postgresql/<major>/bin), or set SLAPROBE_PG_BIN"
                .to_string()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// How [`PgServer::start_with`] sets the server up.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Serve TLS only, with this certificate (PEM) and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Extra settings, `-c key=value` each (e.g. `synchronous_commit=off`).
    pub settings: Vec<(String, String)>,
}

/// A running test server; stopped (immediately) and deleted on drop.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

impl PgServer {
    /// `initdb` + `pg_ctl start` on a free port. Panics with the reason when
    /// PostgreSQL is not installed or does not start (the test cannot run).
    pub fn start() -> PgServer {
        Self::start_with(&PgOptions::default())
    }

    /// [`PgServer::start`] with `options`: TLS only (`ssl = on` with the given
    /// certificate and key, `hostssl` lines only in `pg_hba.conf`, so a plain
    /// connection is rejected) and extra server settings.
    pub fn start_with(options: &PgOptions) -> PgServer {
        let bin = bin_dir().unwrap_or_else(|e| panic!("{e}"));
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("slaprobe-pg-")
            .tempdir()
            .expect("temp dir");
        if as_root {
            run_checked(
                Command::new("chown")
                    .args(["-R", &format!("{OS_USER}:{OS_USER}")])
                    .arg(dir.path()),
                "chown the test cluster's directory",
            );
        }
        let mut pg = PgServer {
            dir,
            bin,
            port: 0,
            as_root,
        };
        let data = pg.data_dir();
        // --no-sync: a test cluster need not survive power loss; trust: loopback only.
        let out = pg
            .server_cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output();
        check(out, "initdb");
        let mut extra = String::new();
        if let Some((cert, key)) = &options.tls {
            let (c, k) = (
                pg.dir.path().join("server.crt"),
                pg.dir.path().join("server.key"),
            );
            std::fs::copy(cert, &c).expect("copy the server certificate");
            std::fs::copy(key, &k).expect("copy the server key");
            {
                use std::os::unix::fs::PermissionsExt as _;
                // PostgreSQL refuses a key others can read.
                std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod the key");
            }
            if pg.as_root {
                run_checked(
                    Command::new("chown")
                        .arg(format!("{OS_USER}:{OS_USER}"))
                        .arg(&c)
                        .arg(&k),
                    "chown the server certificate and key",
                );
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("write pg_hba.conf");
            extra.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            ));
        }
        for (k, v) in &options.settings {
            extra.push_str(&format!(" -c {k}={v}"));
        }
        // A port free a moment ago may be taken by the time the server binds: retry.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c max_connections=200 -c fsync=on{extra}",
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log");
            let out = pg
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "-w", "-t", "60", "start"])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    pg.port = port;
                    return pg;
                }
                Ok(o) => {
                    last = format!(
                        "{}{}\n{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                Err(e) => last = e.to_string(),
            }
        }
        panic!("pg_ctl start failed three times:\n{last}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server command, run as the `postgres` OS user when we are root.
    fn server_cmd(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory (server log: `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of database `db` as the `postgres` superuser (trust auth, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs `sql` in `db` with `psql` (unaligned, tuples only) and returns its
    /// output; panics when psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .output();
        let o = check(out, "psql");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.port == 0 {
            return;
        }
        // immediate: the cluster is thrown away, no need for a shutdown checkpoint.
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
        // Give the postmaster's children a moment to leave before the directory goes.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_checked(cmd: &mut Command, what: &str) {
    check(cmd.output(), what);
}

fn check(out: std::io::Result<Output>, what: &str) -> Output {
    match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!(
            "{what} failed ({}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("{what} could not run: {e}"),
    }
}
