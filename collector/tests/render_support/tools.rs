//! Real tools a report reader meets: headless Chromium (screen and print),
//! poppler's `pdftotext` and `pdfinfo`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chromium may take a while to start on a busy box; it is killed after this.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary (Debian's `chromium`, or `$CHROMIUM`).
pub fn chromium_bin() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// What Chromium should make of the page.
pub enum Output<'a> {
    /// `--screenshot` at 1240×1754 (A4 at 150 dpi).
    Screenshot(&'a Path),
    /// `--print-to-pdf`, without Chromium's own header and footer.
    Pdf(&'a Path),
}

/// Runs headless Chromium on `html_file` with no network and its own profile
/// under `work`; panics with its stderr when it fails or produces nothing.
pub fn chromium(html_file: &Path, output: Output<'_>, work: &Path) {
    let (flag, target) = match output {
        Output::Screenshot(p) => (format!("--screenshot={}", p.display()), p.to_path_buf()),
        Output::Pdf(p) => (format!("--print-to-pdf={}", p.display()), p.to_path_buf()),
    };
    // One profile per run: concurrent Chromiums must not share one.
    let stem = target.file_stem().and_then(|s| s.to_str()).unwrap_or("out");
    let profile = work.join(format!("chromium-profile-{stem}"));
    let stderr_path = target.with_extension("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut cmd = Command::new(chromium_bin());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1240,1754",
        "--no-pdf-header-footer",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(flag)
    .arg(format!("file://{}", html_file.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(stderr);
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {}: {e} (apt-get install chromium)",
            chromium_bin()
        )
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait chromium") {
            break Some(s);
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ok = target.metadata().map(|m| m.len() > 0).unwrap_or(false);
    if !ok {
        let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        panic!(
            "chromium made no {} (status {status:?}, {:?}):\n{err}",
            target.display(),
            started.elapsed()
        );
    }
}

/// Runs a poppler tool and returns its stdout.
pub fn poppler(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e} (apt-get install poppler-utils)"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pdftotext -layout` of the whole document.
pub fn pdf_text(pdf: &Path) -> String {
    poppler("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])
}

/// (page count, page size line) from `pdfinfo`.
pub fn pdf_info(pdf: &Path) -> (usize, String) {
    let info = poppler("pdfinfo", &[pdf.to_str().unwrap()]);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in pdfinfo output:\n{info}"));
    let size = info
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap_or("")
        .to_string();
    (pages, size)
}

/// Copies the test's artifacts to `$SLAPROBE_RENDER_KEEP` when set (to look at them).
pub fn keep(files: &[&Path]) {
    if let Ok(dir) = std::env::var("SLAPROBE_RENDER_KEEP") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        for f in files {
            if let Some(name) = f.file_name() {
                let _ = std::fs::copy(f, dir.join(name));
            }
        }
    }
}

/// Writes `content` as `name` into `$SLAPROBE_RENDER_KEEP` when set.
pub fn keep_text(name: &str, content: &str) {
    if let Ok(dir) = std::env::var("SLAPROBE_RENDER_KEEP") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(PathBuf::from(dir).join(name), content);
    }
}
