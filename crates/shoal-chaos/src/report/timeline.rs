//! The timeline picture: acknowledged records per second over the run (with the exactly-once
//! workload alone: records of committed source transactions per second), each fault a shaded
//! band from injection to heal, labelled with its kind and victim. A dip that outlasts its
//! band is the cluster still recovering; a band with no dip is a fault clients never felt.

use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Line, Path, Rectangle, Text};

use crate::history::{FaultKind, History};

use super::RunInfo;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;
/// Above this many faults the bands are not labelled (they would overlap).
const MAX_LABELLED_FAULTS: usize = 24;

fn colour(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Kill => "#d62728",
        FaultKind::Pause => "#ff7f0e",
        FaultKind::Partition => "#9467bd",
        FaultKind::Restart => "#2ca02c",
        FaultKind::Replace => "#8c564b",
        FaultKind::Reassign => "#17becf",
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `span`.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Acks per one-second bucket of ack time.
pub fn acks_per_second(history: &History, seconds: usize) -> Vec<u64> {
    let mut buckets = vec![0u64; seconds.max(1)];
    for a in &history.acks {
        let i = (a.acked_us / 1_000_000) as usize;
        if let Some(b) = buckets.get_mut(i) {
            *b += 1;
        }
    }
    buckets
}

/// Records of committed source transactions per one-second bucket of commit time.
pub fn commits_per_second(history: &History, seconds: usize) -> Vec<u64> {
    use crate::history::eos::{Outcome, Stage};
    let mut buckets = vec![0u64; seconds.max(1)];
    for t in &history.eos.txns {
        if t.id.stage == Stage::Source && t.outcome == Outcome::Committed {
            let i = (t.ended_us / 1_000_000) as usize;
            if let Some(b) = buckets.get_mut(i) {
                *b += u64::from(t.records);
            }
        }
    }
    buckets
}

/// What is drawn: acks when there are any, else committed transactional records; with the
/// title and axis words for it.
fn series(history: &History, seconds: usize) -> (Vec<u64>, &'static str, &'static str) {
    if history.acks.is_empty() && !history.eos.txns.is_empty() {
        (
            commits_per_second(history, seconds),
            "records of committed transactions per second",
            "committed/s",
        )
    } else {
        (
            acks_per_second(history, seconds),
            "acknowledged records per second",
            "acks/s",
        )
    }
}

fn text(x: f64, y: f64, anchor: &str, size: u32, body: String) -> Text {
    Text::new(body)
        .set("x", x)
        .set("y", y)
        .set("text-anchor", anchor)
        .set("font-family", "sans-serif")
        .set("font-size", size)
}

pub fn render(history: &History, run: &RunInfo, duration_s: f64) -> String {
    let last_event_s = history
        .acks
        .iter()
        .map(|a| a.acked_us)
        .chain(history.eos.txns.iter().map(|t| t.ended_us))
        .chain(history.faults.iter().map(|f| f.end_us))
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    let span_s = duration_s.max(last_event_s).max(1.0).ceil();
    let (buckets, what, unit) = series(history, span_s as usize);
    let peak = buckets.iter().copied().max().unwrap_or(0).max(1) as f64;
    let y_step = nice_step(peak, 5.0);
    let y_max = (peak / y_step).ceil() * y_step;

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |s: f64| LEFT + s / span_s * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;

    let mut doc = Document::new()
        .set("viewBox", (0, 0, WIDTH, HEIGHT))
        .set("width", WIDTH)
        .set("height", HEIGHT)
        .add(
            Rectangle::new()
                .set("width", WIDTH)
                .set("height", HEIGHT)
                .set("fill", "white"),
        )
        .add(text(
            WIDTH / 2.0,
            20.0,
            "middle",
            15,
            format!("shoal-chaos {}: {what}, faults shaded", run.topic),
        ));

    // Labels only while they fit; a long run's faults are told apart by the legend's colours.
    let label_faults = history.faults.len() <= MAX_LABELLED_FAULTS;
    for (i, f) in history.faults.iter().enumerate() {
        let (x0, x1) = (x(f.start_us as f64 / 1e6), x(f.end_us as f64 / 1e6));
        // Three label rows, so the labels of close faults (a rolling restart) do not overlap.
        let label_y = TOP + 12.0 + 12.0 * (i % 3) as f64;
        doc = doc.add(
            Rectangle::new()
                .set("x", x0)
                .set("y", TOP)
                .set("width", (x1 - x0).max(1.5))
                .set("height", plot_h)
                .set("fill", colour(f.kind))
                .set("fill-opacity", 0.18),
        );
        if label_faults {
            doc = doc.add(
                text(
                    x0 + 2.0,
                    label_y,
                    "start",
                    10,
                    format!("{} n{}", f.kind.name(), f.node),
                )
                .set("fill", colour(f.kind)),
            );
        }
    }
    // Legend: one swatch per fault kind that occurred.
    let mut legend_x = WIDTH - RIGHT;
    for kind in [
        FaultKind::Reassign,
        FaultKind::Replace,
        FaultKind::Restart,
        FaultKind::Partition,
        FaultKind::Pause,
        FaultKind::Kill,
    ] {
        if !history.faults.iter().any(|f| f.kind == kind) {
            continue;
        }
        let label = kind.name();
        legend_x -= 14.0 + 7.0 * label.len() as f64;
        doc = doc
            .add(
                Rectangle::new()
                    .set("x", legend_x)
                    .set("y", TOP - 16.0)
                    .set("width", 10)
                    .set("height", 10)
                    .set("fill", colour(kind))
                    .set("fill-opacity", 0.5),
            )
            .add(text(
                legend_x + 13.0,
                TOP - 7.0,
                "start",
                11,
                label.to_string(),
            ));
    }

    // Axes, grid and tick labels.
    let mut tick = 0.0;
    while tick <= y_max + 1e-9 {
        doc = doc
            .add(
                Line::new()
                    .set("x1", LEFT)
                    .set("x2", WIDTH - RIGHT)
                    .set("y1", y(tick))
                    .set("y2", y(tick))
                    .set("stroke", "#e0e0e0"),
            )
            .add(text(
                LEFT - 6.0,
                y(tick) + 4.0,
                "end",
                11,
                format!("{tick:.0}"),
            ));
        tick += y_step;
    }
    let x_step = nice_step(span_s, 10.0);
    let mut tick = 0.0;
    while tick <= span_s + 1e-9 {
        doc = doc.add(text(
            x(tick),
            TOP + plot_h + 16.0,
            "middle",
            11,
            format!("{tick:.0}"),
        ));
        tick += x_step;
    }
    doc = doc
        .add(text(
            LEFT + plot_w / 2.0,
            HEIGHT - 12.0,
            "middle",
            12,
            "seconds since start".to_string(),
        ))
        .add(
            text(16.0, TOP + plot_h / 2.0, "middle", 12, unit.to_string()).set(
                "transform",
                format!("rotate(-90 16 {})", TOP + plot_h / 2.0),
            ),
        )
        .add(
            Line::new()
                .set("x1", LEFT)
                .set("x2", LEFT)
                .set("y1", TOP)
                .set("y2", TOP + plot_h)
                .set("stroke", "black"),
        )
        .add(
            Line::new()
                .set("x1", LEFT)
                .set("x2", WIDTH - RIGHT)
                .set("y1", TOP + plot_h)
                .set("y2", TOP + plot_h)
                .set("stroke", "black"),
        );

    // The series: a step line, one level per second.
    let mut data = Data::new().move_to((x(0.0), y(0.0)));
    for (i, &count) in buckets.iter().enumerate() {
        data = data
            .line_to((x(i as f64), y(count as f64)))
            .line_to((x(i as f64 + 1.0), y(count as f64)));
    }
    doc = doc.add(
        Path::new()
            .set("d", data)
            .set("fill", "none")
            .set("stroke", "#1f77b4")
            .set("stroke-width", 1.5),
    );
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ack, Fault, RecordId};

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(60.0, 10.0), 10.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(3000.0, 5.0), 1000.0);
    }

    #[test]
    fn the_picture_shows_the_series_and_each_fault() {
        let mut h = History::default();
        for s in 0..10u64 {
            h.acks.push(Ack {
                id: RecordId {
                    producer: 0,
                    seq: s,
                },
                partition: 0,
                offset: s as i64,
                sent_us: s * 1_000_000,
                acked_us: s * 1_000_000 + 10,
            });
        }
        h.faults.push(Fault {
            kind: FaultKind::Pause,
            node: 2,
            victim: crate::history::VictimChoice::Random,
            victim_detail: String::new(),
            start_us: 3_000_000,
            end_us: 7_000_000,
        });
        let run = RunInfo {
            workload: "idempotent".into(),
            topic: "t".into(),
            partitions: 1,
            replication_factor: 3,
            min_insync_replicas: 2,
            target: "local".into(),
            brokers: "b".into(),
            faults: vec!["pause".into()],
            producers: 1,
            rate_per_producer: 1,
            consumers: 0,
            seed: 1,
            started_unix_s: 0,
            duration_s: 10.0,
        };
        let svg = render(&h, &run, 10.0);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("pause n2"));
        assert!(svg.contains("<path"));
        assert_eq!(acks_per_second(&h, 10), vec![1; 10]);
    }
}
