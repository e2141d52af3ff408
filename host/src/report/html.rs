//! The report's page: the final tables, the curves and the runs of each setting, in one
//! HTML file beside the PNGs (no script, no network).

use super::{Summary, png_name, short};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) { format!("{x:.3e}") } else { format!("{x:.3}") }
}

/// The page.
pub fn page(s: &Summary) -> String {
    let mut h = String::new();
    let title = format!("Paddock report: {}", s.title);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222}}\
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
td.l,th.l{{text-align:left}}img{{max-width:100%;border:1px solid #ddd}}figure{{margin:1em 0}}\
figcaption{{color:#555;font-size:90%}}code{{background:#f4f4f4;padding:0 3px}}</style></head><body>\n",
        esc(&title)
    );
    let runs: usize = s.settings.iter().map(|(_, r)| r.len()).sum();
    let _ = writeln!(h, "<h1>{}</h1>\n<p>{runs} runs in {} settings.</p>", esc(&title), s.settings.len());
    h.push_str("<h2>Learning curves</h2>\n");
    for (metric, curves) in &s.curves {
        if curves.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"{} against env steps\"><figcaption>{}: the mean over each setting's runs at each step (a run's last value at or before it), the band ±1 standard error.</figcaption></figure>",
            png_name(metric),
            esc(metric),
            esc(metric)
        );
    }
    for (metric, rows) in &s.finals {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h2>Final {}</h2>\n<p>Each run's last value, settings best first by IQM. Mean with its 95% t-interval; interquartile mean (IQM) with its 95% bootstrap interval (runs resampled within each setting, 2,000 times).</p>",
            esc(metric)
        );
        h.push_str(
            "<table><tr><th class=\"l\">setting</th><th>runs</th><th>mean</th><th>95% interval</th><th>IQM</th><th>IQM 95% interval</th><th>min</th><th>max</th></tr>\n",
        );
        for r in rows {
            let st = &r.stats;
            let _ = writeln!(
                h,
                "<tr><td class=\"l\" title=\"{}\">{}</td><td>{}</td><td>{}</td><td>± {}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>{}</td></tr>",
                esc(&r.setting),
                esc(&short(&r.setting)),
                st.n,
                num(st.mean),
                if st.n > 1 { num(st.ci95) } else { "–".into() },
                num(st.iqm),
                num(st.iqm_ci95.0),
                num(st.iqm_ci95.1),
                num(st.min),
                num(st.max)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Runs</h2>\n<table><tr><th class=\"l\">setting</th><th class=\"l\">runs</th></tr>\n");
    for (setting, runs) in &s.settings {
        let _ = writeln!(h, "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>", esc(setting), esc(&runs.join(", ")));
    }
    h.push_str("</table>\n<p>Written by <code>paddock report</code>; the figures are in <code>report.json</code>.</p>\n</body></html>\n");
    h
}
