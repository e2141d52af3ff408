//! Drawing the monitor: runs table, charts (episode return raw and smoothed, eval return,
//! one algorithm metric at a time, SPS), plugin panel with reload history, log pane, footer
//! and help overlay. Small terminals get a compact layout; nothing here assumes a size.

use super::App;
use super::data::{RunView, Shown};
use crate::format::status::{Observed, State};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap};

pub(super) const COLORS: [Color; 6] = [Color::Cyan, Color::Yellow, Color::Magenta, Color::Green, Color::Red, Color::Blue];

/// Below this size the charts are left out.
const MIN_FULL: (u16, u16) = (70, 24);

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let area = f.area();
    if area.width < 20 || area.height < 4 {
        f.render_widget(Paragraph::new("paddock: terminal too small").wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).split(area);
    if area.width < MIN_FULL.0 || area.height < MIN_FULL.1 {
        compact(f, app, rows[0]);
    } else {
        full(f, app, rows[0]);
    }
    footer(f, app, rows[1]);
    if app.help {
        help(f, area);
    }
}

fn compact(f: &mut Frame<'_>, app: &App, area: Rect) {
    let parts = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).split(area);
    runs_table(f, app, parts[0]);
    let text = match app.current() {
        Some(r) => vec![Line::from(run_line(r, app.now)), Line::from("enlarge the terminal for charts")],
        None => vec![Line::from("no runs"), Line::from("")],
    };
    f.render_widget(Paragraph::new(text).style(Style::default().fg(Color::DarkGray)), parts[1]);
}

fn full(f: &mut Frame<'_>, app: &App, area: Rect) {
    let table_h = (app.runs.len() as u16 + 3).clamp(4, 9);
    let rows = Layout::vertical([Constraint::Length(table_h), Constraint::Min(10), Constraint::Length(8)]).split(area);
    runs_table(f, app, rows[0]);
    let mid = Layout::horizontal([Constraint::Percentage(70), Constraint::Percentage(30)]).split(rows[1]);
    if app.big_log {
        log_pane(f, app, rows[1].union(rows[2]));
        return;
    }
    match app.current() {
        Some(run) => {
            charts(f, app, run, mid[0]);
            if run.scene.is_some() && mid[1].height >= 12 {
                let side = Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).split(mid[1]);
                super::scene::scene_pane(f, run, side[0]);
                plugins_pane(f, run, side[1]);
            } else {
                plugins_pane(f, run, mid[1]);
            }
        }
        None => {
            let msg = format!(
                "No runs under {}.\nStart one with `paddock train <config.toml>`; it shows up here within two seconds.",
                app.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }).block(Block::bordered().title(" runs ")), rows[1]);
        }
    }
    log_pane(f, app, rows[2]);
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.digits$}"))
}

fn fmt_elapsed(s: Option<f64>) -> String {
    let Some(s) = s else { return "—".into() };
    let s = s as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s / 60 % 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

fn state_style(shown: Shown) -> Style {
    Style::default().fg(match shown {
        Shown::Run(Observed::Is(State::Running)) => Color::Green,
        Shown::Run(Observed::Is(State::Paused | State::Starting)) | Shown::Waiting => Color::Yellow,
        Shown::Run(Observed::Is(State::Finished)) => Color::Cyan,
        Shown::Run(Observed::Is(State::Failed) | Observed::Lost) | Shown::Deleted | Shown::Unreadable => Color::Red,
        Shown::Run(Observed::Is(State::Stopped | State::Pruned)) => Color::Gray,
    })
}

fn run_line(r: &RunView, now: f64) -> String {
    format!(
        "{} · {} · step {} · best eval {}",
        r.name,
        r.shown(now),
        r.step().map_or_else(|| "—".into(), |s| short(s as f64)),
        fmt_opt(r.best_eval(), 1)
    )
}

fn runs_table(f: &mut Frame<'_>, app: &App, area: Rect) {
    let header = Row::new(["run", "status", "step", "SPS", "best eval", "elapsed"]).style(Style::default().add_modifier(Modifier::BOLD));
    let rows = app.runs.iter().enumerate().map(|(i, r)| {
        let label = r.shown(app.now);
        let sps = match &r.status {
            Some(Ok(s)) if label.is(State::Running) => format!("{:.0}", s.sps),
            _ => "—".into(),
        };
        let step = match (r.step(), &r.status) {
            (Some(s), _) if area.width < MIN_FULL.0 => short(s as f64),
            (Some(s), Some(Ok(st))) if st.total_steps > 0 => format!("{s}/{}", st.total_steps),
            (Some(s), _) => s.to_string(),
            (None, _) => "—".into(),
        };
        let row = Row::new(vec![
            Cell::from(r.name.clone()),
            Cell::from(label.as_str()).style(state_style(label)),
            Cell::from(step),
            Cell::from(sps),
            Cell::from(fmt_opt(r.best_eval(), 1)),
            Cell::from(fmt_elapsed(r.elapsed(app.now))),
        ]);
        if i == app.selected { row.style(Style::default().add_modifier(Modifier::REVERSED)) } else { row }
    });
    let narrow = area.width < MIN_FULL.0;
    let widths = if narrow {
        // run, status, step only
        vec![
            Constraint::Min(8),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(0),
            Constraint::Length(0),
            Constraint::Length(0),
        ]
    } else {
        vec![
            Constraint::Min(12),
            Constraint::Length(10),
            Constraint::Length(17),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(7),
        ]
    };
    let from = app.read_only.as_ref().map_or_else(String::new, |s| format!(" · {s}, read-only"));
    let title = match app.runs.len() {
        0 => format!(" runs{from} "),
        n => format!(" runs ({} of {n}){from} ", app.selected + 1),
    };
    let table = Table::new(rows, widths).header(header).block(Block::bordered().title(title));
    // Stateful, so the table scrolls to keep the selected run in view.
    let mut state = ratatui::widgets::TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
}

/// Points within the zoom window.
fn windowed(points: &[(f64, f64)], window: Option<f64>, end: f64) -> Vec<(f64, f64)> {
    match window {
        Some(w) => points.iter().copied().filter(|p| p.0 >= end - w).collect(),
        None => points.to_vec(),
    }
}

/// Moving average over the last `k` points.
fn smoothed(points: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            sum += p.1;
            if i >= k {
                sum -= points[i - k].1;
            }
            (p.0, sum / (i + 1).min(k) as f64)
        })
        .collect()
}

fn bounds(sets: &[&[(f64, f64)]]) -> ([f64; 2], [f64; 2]) {
    let all = sets.iter().flat_map(|s| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in all {
        (x0, x1, y0, y1) = (x0.min(p.0), x1.max(p.0), y0.min(p.1), y1.max(p.1));
    }
    if x0 > x1 {
        return ([0.0, 1.0], [0.0, 1.0]);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        (y0, y1) = (y0 - 1.0, y1 + 1.0);
    }
    ([x0, x1], [y0, y1])
}

fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// One line of a chart: its name, (step, value) points and colour.
type Series = (String, Vec<(f64, f64)>, Color);

/// A line chart of `series` or a note when there is nothing yet.
fn chart(f: &mut Frame<'_>, area: Rect, title: &str, series: Vec<Series>, empty: &str) {
    chart_with(f, area, title, series, empty, false);
}

/// [`chart`]; with `legend`, the legend shows even when it takes half the chart (an overlay
/// of runs is unreadable without it).
fn chart_with(f: &mut Frame<'_>, area: Rect, title: &str, series: Vec<Series>, empty: &str, legend: bool) {
    let block = Block::bordered().title(format!(" {title} "));
    if series.iter().all(|s| s.1.is_empty()) {
        f.render_widget(Paragraph::new(empty).style(Style::default().fg(Color::DarkGray)).wrap(Wrap { trim: true }).block(block), area);
        return;
    }
    let refs: Vec<&[(f64, f64)]> = series.iter().map(|s| s.1.as_slice()).collect();
    let (xb, yb) = bounds(&refs);
    let datasets = series
        .iter()
        .map(|(name, pts, c)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(*c))
                .data(pts)
        })
        .collect();
    let axis_style = Style::default().fg(Color::DarkGray);
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(Axis::default().style(axis_style).bounds(xb).labels([short(xb[0]), short(xb[1])]))
        .y_axis(Axis::default().style(axis_style).bounds(yb).labels([short(yb[0]), short(yb[1])]))
        .hidden_legend_constraints(if legend {
            (Constraint::Ratio(1, 2), Constraint::Ratio(1, 1))
        } else {
            (Constraint::Ratio(1, 4), Constraint::Ratio(1, 3))
        });
    f.render_widget(chart, area);
}

fn charts(f: &mut Frame<'_>, app: &App, run: &RunView, area: Rect) {
    let rows = Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).split(area);
    let top = Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).split(rows[0]);
    let bottom = Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).split(rows[1]);
    let end = run.step().unwrap_or(0) as f64;
    let get = |r: &RunView, k: &str| windowed(r.series.get(k).map_or(&[][..], Vec::as_slice), app.window, end);
    let zoom = app.window.map_or_else(String::new, |w| format!(", last {} steps", short(w)));

    // The overlay draws the runs of the selected run's env only: returns of different envs
    // do not share an axis.
    let env = run.env_name();
    let peers: Vec<(usize, &RunView)> = app.runs.iter().enumerate().filter(|(_, r)| r.env_name() == env).collect();
    let label = |r: &RunView| if r.name.len() > 28 { format!("…{}", &r.name[r.name.len() - 27..]) } else { r.name.clone() };
    let returns = if app.overlay {
        peers.iter().map(|(i, r)| (label(r), smoothed(&get(r, "rollout/return_mean"), 10), COLORS[i % COLORS.len()])).collect()
    } else {
        let raw = get(run, "rollout/return_mean");
        let smooth = smoothed(&raw, 10);
        vec![("raw".into(), raw, Color::DarkGray), ("smoothed".into(), smooth, Color::Cyan)]
    };
    let env_shown = env.clone().unwrap_or_else(|| "this env's".into());
    let title =
        if app.overlay { format!("episode return, {} {env_shown} runs{zoom}", peers.len()) } else { format!("episode return{zoom}") };
    chart_with(f, top[0], &title, returns, "no finished episodes yet", app.overlay);

    let eval = if app.overlay {
        peers.iter().map(|(i, r)| (label(r), get(r, "eval/return_mean"), COLORS[i % COLORS.len()])).collect()
    } else {
        vec![("eval".into(), get(run, "eval/return_mean"), Color::Green)]
    };
    chart_with(f, top[1], "eval return", eval, "no evaluation yet (train.eval_every)", app.overlay);

    let metrics = run.train_metrics();
    match metrics.get(app.metric % metrics.len().max(1)) {
        Some(name) => {
            let title = format!("{name} ({}/{}, Tab: next)", app.metric % metrics.len() + 1, metrics.len());
            chart(f, bottom[0], &title, vec![(name.to_string(), get(run, name), Color::Yellow)], "");
        }
        None => chart(f, bottom[0], "algorithm metrics", Vec::new(), "no update yet"),
    }
    // An env that reports success gets its success rate here (SPS stays in the runs table).
    let success = get(run, "eval/success_rate");
    let train_success = get(run, "rollout/success_rate");
    if !success.is_empty() || !train_success.is_empty() {
        let series = vec![("eval".into(), success, Color::Green), ("training".into(), train_success, Color::DarkGray)];
        chart_with(f, bottom[1], "success rate", series, "", true);
    } else {
        let sps = windowed(&run.sps, app.window, end);
        chart(f, bottom[1], "env steps/s", vec![("SPS".into(), sps, Color::Magenta)], "SPS appears while the run is live");
    }
}

fn plugins_pane(f: &mut Frame<'_>, run: &RunView, area: Rect) {
    let mut lines: Vec<Line<'_>> = Vec::new();
    match &run.plugins {
        Ok(entries) if entries.is_empty() => lines.push(Line::from("no plugins.lock yet")),
        Ok(entries) => {
            for e in entries {
                let since = if e.since_step == 0 { String::new() } else { format!(" from step {}", e.since_step) };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<10}", e.role), Style::default().add_modifier(Modifier::BOLD)),
                    Span::raw(e.name.clone()),
                ]));
                lines.push(Line::from(vec![
                    Span::raw("  "),
                    Span::styled(e.sha256.chars().take(12).collect::<String>(), Style::default().fg(Color::DarkGray)),
                    Span::raw(format!(" {}@{}{since}", e.world, e.package_version)),
                ]));
            }
        }
        Err(e) => lines.push(Line::styled(e.clone(), Style::default().fg(Color::Red))),
    }
    lines.push(Line::from(""));
    lines.push(Line::styled("reloads", Style::default().add_modifier(Modifier::BOLD)));
    if run.reloads.is_empty() {
        lines.push(Line::styled("none yet (save a plugin's .wasm to swap it)", Style::default().fg(Color::DarkGray)));
    }
    let keep = (area.height as usize).saturating_sub(lines.len() + 2).max(1);
    for r in run.reloads.iter().rev().take(keep).rev() {
        let color = match r.outcome {
            "refused" => Color::Red,
            _ => Color::Green,
        };
        let ms = r.ms.map_or(String::new(), |ms| format!(" in {ms:.0} ms"));
        lines.push(Line::from(vec![
            Span::raw(format!("step {:>8} {:<9} ", r.step, r.role)),
            Span::styled(r.outcome, Style::default().fg(color)),
            Span::styled(ms, Style::default().fg(Color::DarkGray)),
        ]));
    }
    if let Some(Ok(s)) = &run.status
        && let Some(m) = &s.message
    {
        lines.push(Line::styled(
            m.clone(),
            Style::default().fg(if s.state == crate::format::status::State::Failed { Color::Red } else { Color::Yellow }),
        ));
    }
    if run.bad_lines > 0 {
        lines.push(Line::styled(format!("{} metrics lines are not JSON (skipped)", run.bad_lines), Style::default().fg(Color::Red)));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" plugins ")), area);
}

fn log_pane(f: &mut Frame<'_>, app: &App, area: Rect) {
    let block = Block::bordered().title(" log ");
    let Some(run) = app.current() else {
        f.render_widget(block, area);
        return;
    };
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line<'_>> = if run.gone {
        vec![Line::styled(
            format!("run directory {} was deleted; the monitor keeps what it had read", run.name),
            Style::default().fg(Color::Red),
        )]
    } else if run.log.is_empty() {
        vec![Line::styled("nothing logged yet", Style::default().fg(Color::DarkGray))]
    } else {
        // Checkpoint lines come every few seconds: only the newest is shown, so warnings and
        // reloads stay in view.
        let checkpoint = |l: &str| l.contains("] checkpoint at step ");
        let newest = run.log.iter().rposition(|l| checkpoint(l));
        let shown: Vec<&String> =
            run.log.iter().enumerate().filter(|(i, l)| !checkpoint(l) || Some(*i) == newest).map(|(_, l)| l).collect();
        shown
            .iter()
            .skip(shown.len().saturating_sub(height))
            .map(|l| {
                let style = if l.starts_with("ERROR") {
                    Style::default().fg(Color::Red)
                } else if l.starts_with("WARN") {
                    Style::default().fg(Color::Yellow)
                } else {
                    Style::default()
                };
                Line::styled((*l).clone(), style)
            })
            .collect()
    };
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn footer(f: &mut Frame<'_>, app: &App, area: Rect) {
    let text = match &app.message {
        Some(m) => m.clone(),
        None if app.owns_run => "q stop run & quit · p pause · c checkpoint · ? help".into(),
        None => "q quit · ↑↓ run · p pause · c checkpoint · ? help".into(),
    };
    f.render_widget(Paragraph::new(text).style(Style::default().fg(Color::DarkGray)), area);
}

fn help(f: &mut Frame<'_>, area: Rect) {
    let w = area.width.min(74);
    let h = area.height.min(super::BINDINGS.len() as u16 + 2);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    // Generated from the bindings the keys go through, so the help names every key.
    let lines: Vec<Line<'_>> = super::BINDINGS
        .iter()
        .map(|(keys, _, what)| {
            let k = keys.iter().map(|k| k.label()).collect::<Vec<_>>().join(" ");
            Line::from(vec![Span::styled(format!("{k:<20}"), Style::default().add_modifier(Modifier::BOLD)), Span::raw(*what)])
        })
        .collect();
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")), popup);
}

/// Renders `app` into a `width × height` buffer and returns it as text (for tests and
/// snapshots): one line per row, trailing spaces kept.
pub fn render_to_string(app: &App, width: u16, height: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|f| draw(f, app)).expect("draw");
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}
