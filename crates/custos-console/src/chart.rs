//! The activity chart: views and field reveals per hour as bars, the peers' median
//! reveals as a line and the hourly reveal quota as a dashed line, drawn as inline SVG
//! on the server (presentation attributes only, so the strict CSP holds), with the same
//! numbers as a table for screen readers and for copying.

use maud::{Markup, html};

use super::page::{when, when_cell};

/// One hour of the chart.
pub(super) struct Point {
    /// Start of the hour, unix milliseconds.
    pub start: i64,
    /// Masked views.
    pub views: f64,
    /// Fields revealed.
    pub reveals: f64,
    /// The peers' median reveals, if the chart compares with peers.
    pub peer_reveals: Option<f64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// The chart of `points`, with the quota line at `quota` if any; `peers` describes the
/// peer line in the legend.
pub(super) fn render(points: &[Point], quota: Option<u32>, peers: &str) -> Markup {
    let max = points
        .iter()
        .flat_map(|p| [p.views, p.reveals, p.peer_reveals.unwrap_or(0.0)])
        .chain(quota.map(f64::from))
        .fold(1.0_f64, f64::max);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / points.len().max(1) as f64;
    let y = |v: f64| TOP + plot_h - v / max * plot_h;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let peer_line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.peer_reveals
                .map(|v| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y(v)))
        })
        .collect();
    let summary = format!(
        "{} hours: {} views, {} fields revealed in all",
        points.len(),
        points.iter().map(|p| p.views).sum::<f64>(),
        points.iter().map(|p| p.reveals).sum::<f64>()
    );
    html! {
        figure {
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(summary) {
                title { (summary) }
                line x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH) y2=(TOP + plot_h) stroke="#5b6570" {}
                text x="2" y=(TOP + 10.0) font-size="11" fill="#5b6570" { (format!("{max:.0}")) }
                text x="2" y=(TOP + plot_h) font-size="11" fill="#5b6570" { "0" }
                @for (i, p) in points.iter().enumerate() {
                    @let x = LEFT + slot * i as f64;
                    rect x=(format!("{:.1}", x + 1.0)) y=(format!("{:.1}", y(p.views)))
                        width=(format!("{bar:.1}")) height=(format!("{:.1}", TOP + plot_h - y(p.views)))
                        fill="#9bbce0" { title { (when(p.start)) ": " (p.views) " views" } }
                    rect x=(format!("{:.1}", x + 1.0 + bar)) y=(format!("{:.1}", y(p.reveals)))
                        width=(format!("{bar:.1}")) height=(format!("{:.1}", TOP + plot_h - y(p.reveals)))
                        fill="#0b5cad" { title { (when(p.start)) ": " (p.reveals) " fields revealed" } }
                    @if i % 3 == 0 {
                        text x=(format!("{:.1}", x)) y=(HEIGHT - 6.0) font-size="11" fill="#5b6570" {
                            (&when(p.start)[11..13]) "h"
                        }
                    }
                }
                @if peer_line.len() > 1 {
                    polyline points=(peer_line.join(" ")) fill="none" stroke="#e07a00" stroke-width="2" {}
                }
                @if let Some(q) = quota {
                    line x1=(LEFT) x2=(WIDTH) y1=(format!("{:.1}", y(f64::from(q)))) y2=(format!("{:.1}", y(f64::from(q))))
                        stroke="#a4161a" stroke-dasharray="6 4" stroke-width="1.5" {}
                }
            }
            figcaption.legend {
                span { span.swatch.views {} "views" }
                span { span.swatch.reveals {} "fields revealed" }
                @if !peers.is_empty() { span { span.swatch.peer {} "fields revealed: " (peers) } }
                @if let Some(q) = quota { span { span.swatch.quota {} "hourly reveal quota (" (q) ")" } }
                span { "hours in UTC" }
            }
        }
        details {
            summary { "The numbers" }
            div.scroll { table {
                thead { tr { th { "Hour" } th { "Views" } th { "Fields revealed" } @if !peers.is_empty() { th { "Peers' median" } } } }
                tbody { @for p in points {
                    tr { td { (when_cell(p.start)) } td { (p.views) } td { (p.reveals) }
                         @if let Some(m) = p.peer_reveals { td { (m) } } }
                } }
            } }
        }
    }
}
