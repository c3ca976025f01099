//! Peak memory of the reading stage, measured as the peak resident set (VmHWM) of this test process,
//! which holds nothing else: one test, so no other test's allocations share the peak. The loopback server
//! that serves the pages runs in the same process and is counted too.

mod evidence_support;

use std::time::Duration;

use conductor::evidence::{ReadLimits, ReadStatus, SourceText, read_sources};
use evidence_support::*;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The peak resident set of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_ten_3_mib_pages_and_a_20_mib_one_peaks_under_80_mb() {
    const LIMIT: u64 = 80 * 1000 * 1000;
    let site = serve(|path, _| async move {
        if path == "/huge" {
            huge_page(20 * 1024 * 1024)
        } else {
            huge_page(3 * 1024 * 1024)
        }
    })
    .await;
    // Debug builds extract a 3 MiB page in about a second, one page at a time: give each page time.
    let fetcher = conductor::evidence::Fetcher::new(conductor::evidence::FetchConfig {
        allow: vec![site.addr],
        page_timeout: Duration::from_secs(300),
        ..conductor::evidence::FetchConfig::default()
    });
    let before = peak_rss();
    let sources: Vec<SourceText> = (0..10)
        .map(|i| SourceText {
            url: site.url(&format!("/page/{i}")),
            provider_text: None,
        })
        .collect();
    let results = read_sources(
        &fetcher,
        &sources,
        "tokio work stealing scheduler",
        &ReadLimits::new(10, Instant::now() + Duration::from_secs(300)),
        |_| {},
        &CancellationToken::new(),
    )
    .await;
    for r in &results {
        assert_eq!(r.read.status, ReadStatus::Read, "{r:#?}");
        assert_eq!(r.read.detail, None, "read whole");
        assert!(r.passages[0].text.contains(KEY_PASSAGE));
    }
    let after_ten = peak_rss();
    let huge = read_sources(
        &fetcher,
        &[SourceText {
            url: site.url("/huge"),
            provider_text: None,
        }],
        "tokio work stealing scheduler",
        &ReadLimits::new(1, Instant::now() + Duration::from_secs(300)),
        |_| {},
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(huge[0].read.detail.as_deref(), Some("only the first 3 MiB"));
    let after_huge = peak_rss();
    eprintln!(
        "peak RSS: {:.1} MB before reading, {:.1} MB after ten 3 MiB pages, {:.1} MB after a 20 MiB page",
        before as f64 / 1e6,
        after_ten as f64 / 1e6,
        after_huge as f64 / 1e6
    );
    assert!(after_ten < LIMIT, "ten 3 MiB pages: peak {after_ten} bytes");
    assert!(after_huge < LIMIT, "a 20 MiB page: peak {after_huge} bytes");
}
