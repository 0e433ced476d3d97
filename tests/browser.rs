//! The email in a real browser engine: headless Chromium renders a busy digest at phone
//! (375 px) and desktop (800 px) widths. Nothing may overflow sideways at 375 px, and every
//! paper title must be visible. Screenshots land in target/browser/ for a person to look at.
//! Skipped, with a message, where no Chromium is installed (.ci/run installs Debian's); in CI
//! that fails instead.

use std::path::Path;
use std::process::Command;

mod support;

use support::{chromium, render_recorded_day, skip_or_fail_in_ci};

/// A page showing the email in a frame exactly `width` px wide (headless Chromium's window
/// cannot be narrower than 500 px), measuring it once loaded into the page's title.
fn frame_page(html: &str, width: u32) -> String {
    let escaped = html
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<!DOCTYPE html><html><head><title>waiting</title></head>
<body style="margin:0"><iframe id="f" style="width:{width}px;height:4000px;border:0" srcdoc="{escaped}"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const w = document.getElementById('f').contentWindow, d = w.document;
  const titles = [...d.querySelectorAll('p.title a')];
  const visible = titles.filter(a => {{
    const r = a.getBoundingClientRect(), s = w.getComputedStyle(a);
    return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w.innerWidth + 1
      && s.visibility !== 'hidden' && s.display !== 'none';
  }}).length;
  document.title = 'PROBE ' + JSON.stringify({{
    scrollWidth: d.documentElement.scrollWidth, innerWidth: w.innerWidth,
    titles: titles.length, visible }});
}});
</script></body></html>"#
    )
}

fn chrome(bin: &Path, width: u32, extra: &[&str], page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},4000", width.max(500) + 20))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_digest_reads_at_phone_and_desktop_widths() {
    let Some(bin) = chromium() else {
        skip_or_fail_in_ci(
            "the browser test",
            "no Chromium on this machine (install Debian's chromium package; .ci/run does)",
        );
        return;
    };
    let (rendered, digest) = render_recorded_day(
        "[smtp]\nfrom = \"digest@paperboy.test\"\n\
         [topics.all]\nkeywords = [\"the\", \"we\", \"a\"]\nmax_papers = 40\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\ntopics = [\"all\"]\n",
    );
    let html = rendered.html;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("digest.html"), &html).unwrap();

    for width in [375u32, 800] {
        let page = dir.join(format!("digest-{width}.html"));
        std::fs::write(&page, frame_page(&html, width)).unwrap();
        let dom = chrome(&bin, width, &["--dump-dom"], &page);
        let json = dom
            .split("<title>PROBE ")
            .nth(1)
            .and_then(|s| s.split("</title>").next())
            .unwrap_or_else(|| panic!("no probe result in the DOM at {width}px"));
        let probe: serde_json::Value = serde_json::from_str(&json.replace("&quot;", "\"")).unwrap();
        let scroll = probe["scrollWidth"].as_u64().unwrap();
        let inner = probe["innerWidth"].as_u64().unwrap();
        assert_eq!(inner, u64::from(width), "the frame is {width}px wide");
        assert!(
            scroll <= inner,
            "{width}px: content {scroll}px wide overflows {inner}px"
        );
        assert_eq!(
            probe["titles"].as_u64().unwrap() as usize,
            digest.paper_count(),
            "{width}px: every paper has its title link"
        );
        assert_eq!(
            probe["visible"], probe["titles"],
            "{width}px: every title visible"
        );
        let shot = dir.join(format!("digest-{width}.png"));
        chrome(
            &bin,
            width,
            &[&format!("--screenshot={}", shot.display())],
            &page,
        );
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "a real screenshot"
        );
    }
    eprintln!("screenshots: {}", dir.display());
}
