//! The run's timeline as an SVG: latency percentiles per second on top,
//! events per second below. SVG text needs no fonts on the machine.

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::report::Report;

/// The series whose latency is drawn: what users of this scenario feel most.
fn latency_series(report: &Report) -> Vec<String> {
    let has = |n: &str| report.timeline.iter().any(|p| p.series.contains_key(n));
    if has("delivery") {
        vec!["delivery".into()]
    } else if has("create") || has("lookup") {
        ["create", "lookup"].iter().filter(|n| has(n)).map(|n| (*n).to_owned()).collect()
    } else if has("join") {
        vec!["join".into()]
    } else {
        Vec::new()
    }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One of the two charts, seconds across.
type Panel<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: String,
    seconds: f64,
    max_y: f64,
    y_desc: &str,
) -> anyhow::Result<Panel<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..max_y)
        .map_err(|e| anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("seconds").y_desc(y_desc).draw().map_err(|e| anyhow!("{e}"))?;
    Ok(chart)
}

fn line(
    chart: &mut Panel<'_, '_>,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    label: String,
) -> anyhow::Result<()> {
    chart
        .draw_series(LineSeries::new(points, colour.stroke_width(2)))
        .map_err(|e| anyhow!("{e}"))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Panel<'a, 'b>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))
}

pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (top, bottom) = root.split_vertically(380);
        let len = report.timeline.len().max(1) as f64;

        let lat = latency_series(report);
        let max_ms = report
            .timeline
            .iter()
            .flat_map(|p| lat.iter().filter_map(|n| p.series.get(n)).map(|s| s.p99_ms))
            .fold(0.0f64, f64::max)
            .max(0.1)
            * 1.15;
        let title = format!(
            "{} — {} latency per second (ms; max is clipped to the p99 scale)",
            report.scenario,
            lat.join(" / ")
        );
        let mut chart = panel(&top, title, len, max_ms, "ms")?;
        let mut colour = 0;
        for name in &lat {
            type Pick = fn(&crate::stats::Percentiles) -> f64;
            let picks: [(&str, Pick); 4] = [
                ("p50", |p| p.p50_ms),
                ("p90", |p| p.p90_ms),
                ("p99", |p| p.p99_ms),
                ("max", |p| p.max_ms),
            ];
            for (label, pick) in picks {
                let c = COLOURS[colour % COLOURS.len()];
                colour += 1;
                let points: Vec<(f64, f64)> = report
                    .timeline
                    .iter()
                    .filter_map(|p| {
                        p.series
                            .get(name)
                            .filter(|s| s.count > 0)
                            .map(|s| (p.t as f64 + 0.5, pick(s).min(max_ms)))
                    })
                    .collect();
                line(&mut chart, points, c, format!("{name} {label}"))?;
            }
        }
        legend(&mut chart)?;

        let names: Vec<String> = {
            let mut n: Vec<String> =
                report.timeline.iter().flat_map(|p| p.series.keys().cloned()).collect();
            n.sort();
            n.dedup();
            n
        };
        let max_rate = report
            .timeline
            .iter()
            .flat_map(|p| p.series.values().map(|s| s.count))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.15;
        let caption = format!("{} — events per second", report.scenario);
        let mut chart = panel(&bottom, caption, len, max_rate, "per second")?;
        for (i, name) in names.iter().enumerate() {
            let points: Vec<(f64, f64)> = report
                .timeline
                .iter()
                .map(|p| (p.t as f64 + 0.5, p.series.get(name).map_or(0.0, |s| s.count as f64)))
                .collect();
            line(&mut chart, points, COLOURS[i % COLOURS.len()], format!("{name}/s"))?;
        }
        legend(&mut chart)?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    std::fs::write(path, svg)?;
    Ok(())
}
