//! Learning curves drawn with plotters into an RGB buffer, written as PNG by tiny-skia. The
//! font (DejaVu Sans) is embedded, so reports draw the same on a machine without fonts.

use super::{Curve, short};
use plotters::prelude::*;
use std::path::Path;

/// Image size.
const SIZE: (u32, u32) = (960, 600);

/// Settings named in a legend.
const LEGEND: usize = 8;

fn font() -> anyhow::Result<()> {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *FONT.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if ok { Ok(()) } else { anyhow::bail!("the embedded font could not be loaded") }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e:?}")
}

/// A readable step count: 1500 → "1.5k", 2000000 → "2M".
fn steps(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(x / 1e3))
    } else {
        trim(x)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

/// Draws `curves` of `metric` (one line per setting, its mean, and a band of ± one standard
/// error over its runs) into the PNG `path`.
pub fn curves(metric: &str, curves: &[Curve], path: &Path) -> anyhow::Result<()> {
    font()?;
    let (w, h) = SIZE;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let pts = curves.iter().flat_map(|c| c.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for (s, m, se, _) in pts {
            x0 = x0.min(*s as f64);
            x1 = x1.max(*s as f64);
            y0 = y0.min(m - se);
            y1 = y1.max(m + se);
        }
        if !x0.is_finite() {
            anyhow::bail!("no points to draw");
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.05).max(1e-6);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let runs: Vec<usize> = curves.iter().map(|c| c.runs).collect();
        let caption = format!(
            "{metric} — mean over {} (band: ±1 standard error)",
            if runs.iter().all(|r| *r == runs[0]) { format!("{} run(s) per setting", runs[0]) } else { "runs".into() }
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 22))
            .margin(18)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("env steps")
            .y_desc(metric)
            .x_label_formatter(&|x| steps(*x))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        // With many settings the legend names the best few by their last mean; the rest
        // are drawn thinner (the page's tables name them all).
        let mut order: Vec<usize> = (0..curves.len()).collect();
        let last = |c: &Curve| c.points.last().map_or(f64::NEG_INFINITY, |p| p.1);
        order.sort_by(|a, b| last(&curves[*b]).total_cmp(&last(&curves[*a])));
        let named: Vec<usize> = order.iter().copied().take(LEGEND).collect();
        for (i, c) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let width = if named.contains(&i) || curves.len() <= LEGEND { 2 } else { 1 };
            if c.points.iter().any(|p| p.2 > 0.0) {
                let upper = c.points.iter().map(|(s, m, se, _)| (*s as f64, m + se));
                let lower = c.points.iter().rev().map(|(s, m, se, _)| (*s as f64, m - se));
                chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.mix(0.18)))).map_err(err)?;
            }
            let series = chart
                .draw_series(LineSeries::new(c.points.iter().map(|(s, m, _, _)| (*s as f64, *m)), color.stroke_width(width)))
                .map_err(err)?;
            if named.contains(&i) {
                let label = short(&c.setting);
                series
                    .label(format!("{label} ({} run{})", c.runs, if c.runs == 1 { "" } else { "s" }))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3)));
            }
        }
        if curves.len() > LEGEND {
            let more = format!("… and {} more settings (thinner; see the tables)", curves.len() - LEGEND);
            chart
                .draw_series(std::iter::once(PathElement::new(Vec::<(f64, f64)>::new(), WHITE)))
                .map_err(err)?
                .label(more)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], RGBColor(200, 200, 200).stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    let mut pm = tiny_skia::Pixmap::new(w, h).ok_or_else(|| anyhow::anyhow!("an empty image"))?;
    for (px, c) in pm.data_mut().chunks_exact_mut(4).zip(rgb.chunks_exact(3)) {
        px.copy_from_slice(&[c[0], c[1], c[2], 255]);
    }
    pm.save_png(path).map_err(|e| anyhow::anyhow!("failed to write {}: {e}", path.display()))
}
