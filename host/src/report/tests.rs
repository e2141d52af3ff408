use super::*;

fn run(name: &str, setting: &str, seed: i64, points: &[(u64, f64)]) -> RunData {
    let lines = points
        .iter()
        .map(|(s, v)| {
            let mut m = serde_json::Map::new();
            m.insert("step".into(), (*s).into());
            m.insert("eval/return_mean".into(), (*v).into());
            m
        })
        .collect();
    RunData { name: name.into(), setting: setting.into(), seed: Some(seed), lines, flat: BTreeMap::new() }
}

/// The intervals against a hand calculation: three runs ending at 10, 20 and 60 have mean
/// 30, sample standard deviation √700 = 26.458, and a 95% t-interval of
/// t(0.975, 2) · 26.458 / √3 = 4.303 · 15.275 = 65.72; their IQM (nothing trimmed from
/// three) is the mean.
#[test]
fn curves_and_final_intervals_match_a_hand_calculation() {
    let runs = vec![
        run("a1", "lr=1", 1, &[(100, 1.0), (200, 10.0)]),
        run("a2", "lr=1", 2, &[(100, 3.0), (200, 20.0)]),
        run("a3", "lr=1", 3, &[(100, 5.0), (150, 7.0), (200, 60.0)]),
        run("b1", "lr=2", 1, &[(100, 2.0)]),
    ];
    let s = summarise("t", &runs, &[]);
    assert_eq!(s.settings.len(), 2);
    let f = &s.finals["eval/return_mean"][0];
    assert_eq!(f.setting, "lr=1");
    assert!((f.stats.mean - 30.0).abs() < 1e-12);
    assert!((f.stats.std - 700f64.sqrt()).abs() < 1e-9);
    assert!((f.stats.ci95 - 4.303 * 700f64.sqrt() / 3f64.sqrt()).abs() < 1e-2, "{}", f.stats.ci95);
    assert!((f.stats.iqm - 30.0).abs() < 1e-12);
    assert!(f.stats.iqm_ci95.0 >= 10.0 && f.stats.iqm_ci95.1 <= 60.0 && f.stats.iqm_ci95.0 < f.stats.iqm_ci95.1);
    // The curve: at 150 the runs without a point there count with their value at 100.
    let c = &s.curves["eval/return_mean"][0];
    let at = |step: u64| c.points.iter().find(|p| p.0 == step).copied().expect("step");
    assert_eq!(at(100).1, 3.0);
    assert_eq!((at(150).1, at(150).3), ((1.0 + 3.0 + 7.0) / 3.0, 3));
    assert_eq!(at(200).1, 30.0);
    let se = (((10.0f64 - 30.0).powi(2) + (20.0f64 - 30.0).powi(2) + (60.0f64 - 30.0).powi(2)) / 2.0).sqrt() / 3f64.sqrt();
    assert!((at(200).2 - se).abs() < 1e-12);
    // b1 stops at 100: it has no value at 200.
    assert_eq!(s.curves["eval/return_mean"][1].points.len(), 1);
}

/// The PNG decodes, is the stated size and is not blank (the lines' colours are in it);
/// the page names each image.
#[test]
fn the_report_writes_pngs_that_are_drawn_and_a_page_that_holds_them() {
    let runs: Vec<RunData> = (0..6)
        .map(|i| {
            let pts: Vec<(u64, f64)> = (1..=20).map(|s| (s * 1000, (s as f64).sqrt() * (1.0 + (i % 3) as f64) + i as f64)).collect();
            run(&format!("r{i}"), if i < 3 { "algo=ppo" } else { "algo=sac" }, i, &pts)
        })
        .collect();
    let s = summarise("test", &runs, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write(&s, dir.path()).expect("write");
    assert_eq!(files.len(), 3, "{files:?}");
    let png = tiny_skia::Pixmap::load_png(dir.path().join("eval-return_mean.png")).expect("a PNG");
    assert_eq!((png.width(), png.height()), (960, 600));
    let px: Vec<[u8; 4]> = png.data().chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
    let not_white = px.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    assert!(not_white > px.len() / 100, "drawn: {not_white} of {} pixels", px.len());
    let colours: std::collections::HashSet<[u8; 4]> = px.iter().copied().collect();
    assert!(colours.len() > 20, "lines, bands, text: {} colours", colours.len());
    let first = Palette99::pick(0).to_rgba();
    assert!(px.iter().any(|p| p[..3] == [first.0, first.1, first.2]), "the first setting's line is drawn");
    let page = std::fs::read_to_string(dir.path().join("index.html")).expect("page");
    assert!(page.contains("<img src=\"eval-return_mean.png\"") && page.contains("algo=ppo") && page.contains("IQM"), "{page}");
}

use plotters::style::{Color, Palette, Palette99};
