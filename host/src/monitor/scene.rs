//! The monitor's scene pane: the run's robot from `scene.json`, drawn in braille dots.

use super::data::RunView;
use super::ui::COLORS;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Block, Paragraph, Wrap};

/// The run's robot, side view (`scene.json`): each shape's outline, in the robot file's
/// colour where it gives one, else one colour per moving body, fixed bodies grey, in braille dots scaled so the robot keeps its proportions.
pub(super) fn scene_pane(f: &mut Frame<'_>, run: &RunView, area: Rect) {
    use ratatui::widgets::canvas::{Canvas, Line as Stroke};
    let scene = match &run.scene {
        Some(Ok(scene)) => scene,
        Some(Err(e)) => {
            let text = Paragraph::new(e.clone()).style(Style::default().fg(Color::Red)).wrap(Wrap { trim: true });
            f.render_widget(text.block(Block::bordered().title(" scene ")), area);
            return;
        }
        None => return,
    };
    // What a camera sees, at the pane's right when it has room: two pixels a cell.
    let area = match &scene.camera {
        Some(cam) if area.width >= cam.width as u16 + 24 && area.height >= (cam.height as u16).div_ceil(2) + 2 => {
            let w = cam.width as u16 + 2;
            let right = Rect { x: area.x + area.width - w, y: area.y, width: w, height: (cam.height as u16).div_ceil(2) + 2 };
            camera_pane(f, cam, right);
            Rect { width: area.width - w, ..area }
        }
        _ => area,
    };
    let block = Block::bordered().title(format!(" scene · step {} ", scene.step));
    let inner = block.inner(area);
    // A braille cell is 2×4 dots and about twice as tall as wide: square dots, so the same
    // metres per dot both ways keeps the robot's shape.
    let [x0, x1, z0, z1] = scene.view.map(f64::from);
    let (w, h) = (f64::from(inner.width.max(1)) * 2.0, f64::from(inner.height.max(1)) * 4.0);
    let per_dot = ((x1 - x0) / w).max((z1 - z0) / h);
    let (cx, cz) = ((x0 + x1) / 2.0, (z0 + z1) / 2.0);
    let window = [cx - per_dot * w / 2.0, cx + per_dot * w / 2.0, cz - per_dot * h / 2.0, cz + per_dot * h / 2.0];
    let canvas =
        Canvas::default().block(block).marker(Marker::Braille).x_bounds([window[0], window[1]]).y_bounds([window[2], window[3]]).paint(
            |ctx| {
                for poly in &scene.polygons {
                    let color = match poly.rgb {
                        Some([r, g, b]) => Color::Rgb(r, g, b),
                        None => poly.body.map_or(Color::DarkGray, |b| COLORS[b % COLORS.len()]),
                    };
                    for (k, a) in poly.points.iter().enumerate() {
                        let b = poly.points[(k + 1) % poly.points.len()];
                        let a = (f64::from(a[0]), f64::from(a[1]));
                        // The canvas drops a line with an end outside it (a long floor): clip it.
                        if let Some(((x1, y1), (x2, y2))) = clip(a, (f64::from(b[0]), f64::from(b[1])), window) {
                            ctx.draw(&Stroke::new(x1, y1, x2, y2, color));
                        }
                    }
                }
            },
        );
    f.render_widget(canvas, area);
}

/// A camera's picture in half blocks: each cell the pixel above (its colour) over the one
/// below (its background).
fn camera_pane(f: &mut Frame<'_>, cam: &crate::format::scene::CameraPicture, area: Rect) {
    use ratatui::text::{Line, Span};
    let (w, h) = (cam.width as usize, cam.height as usize);
    let px = |x: usize, y: usize| -> Color {
        let i = 3 * (y.min(h.saturating_sub(1)) * w + x);
        match cam.rgb.get(i..i + 3) {
            Some(c) => Color::Rgb(c[0], c[1], c[2]),
            None => Color::Black,
        }
    };
    let lines: Vec<Line<'_>> = (0..h)
        .step_by(2)
        .map(|y| Line::from((0..w).map(|x| Span::styled("▀", Style::default().fg(px(x, y)).bg(px(x, y + 1)))).collect::<Vec<_>>()))
        .collect();
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(format!(" {} ", cam.name))), area);
}

/// The part of the segment a–b inside `window` (x0, x1, y0, y1), if any (Liang–Barsky).
fn clip(a: (f64, f64), b: (f64, f64), window: [f64; 4]) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - window[0]), (dx, window[1] - a.0), (-dy, a.1 - window[2]), (dy, window[3] - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}
