//! The summary a person reads at the end of a run.

use comfy_table::{CellAlignment, Table, presets};

use super::Report;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    t
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "never".into())
}

pub fn render(report: &Report) -> String {
    let r = &report.run;
    let c = &report.counts;
    let a = &report.anomalies;
    let mut out = format!(
        "shoal-chaos: {}  topic {} ({} partitions, RF {}, min.insync.replicas {}), {:.0} s, \
         target {}, faults {}, seed {}\n\n",
        report.verdict.to_uppercase(),
        r.topic,
        r.partitions,
        r.replication_factor,
        r.min_insync_replicas,
        r.duration_s,
        r.target,
        r.faults.join(","),
        r.seed
    );

    let mut checks = table(&["CHECK", "COUNT", "RESULT"]);
    let verdict = |n: u64| if n == 0 { "ok" } else { "FAIL" };
    for (name, n) in [
        ("acknowledged records lost", a.lost.count),
        ("records duplicated", a.duplicated.count),
        ("records reordered", a.reordered.count),
        ("acks naming another offset", a.moved.count),
        ("consumed again after commit", a.consumed_after_commit.count),
    ] {
        checks.add_row(vec![
            name.to_string(),
            n.to_string(),
            verdict(n).to_string(),
        ]);
    }
    for (name, n) in [
        ("sent", c.sent),
        ("acknowledged", c.acked),
        ("failed (error to producer)", c.failed),
        ("undelivered at close", c.undelivered),
        ("stored (final read)", c.stored),
        ("stored without ack", a.unacked_stored),
        ("group consumed", c.group_consumed),
        ("group redelivered (allowed)", a.group_redelivered),
        ("group commits", c.group_commits),
    ] {
        checks.add_row(vec![name.to_string(), n.to_string(), "info".to_string()]);
    }
    if let Some(col) = checks.column_mut(1) {
        col.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str(&checks.to_string());
    out.push_str("\n\n");

    let mut faults = table(&["#", "FAULT", "NODE", "AT_S", "HEALED_S", "UNAVAILABLE_MS"]);
    for (i, f) in report.faults.iter().enumerate() {
        faults.add_row(vec![
            (i + 1).to_string(),
            f.kind.name().to_string(),
            f.node.to_string(),
            format!("{:.1}", f.start_s),
            format!("{:.1}", f.end_s),
            ms(f.unavailable_ms),
        ]);
    }
    for col in [0, 2, 3, 4, 5] {
        if let Some(col) = faults.column_mut(col) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    if report.faults.is_empty() {
        out.push_str("no faults injected\n");
    } else {
        out.push_str(&faults.to_string());
        out.push_str(&format!(
            "\n\nunavailability after a fault: median {} ms, max {} ms, never recovered {}\n",
            ms(report.unavailability.median_ms),
            ms(report.unavailability.max_ms),
            report.unavailability.never_recovered
        ));
    }
    for e in &report.producer_errors {
        out.push_str(&format!("producer error: {e}\n"));
    }
    for id in &a.lost.examples {
        out.push_str(&format!("lost: {id}\n"));
    }
    for d in &a.duplicated.examples {
        out.push_str(&format!("duplicated: {} at {:?}\n", d.id, d.at));
    }
    for r in &a.reordered.examples {
        out.push_str(&format!(
            "reordered: partition {} offset {} holds {} before {} at offset {}\n",
            r.partition, r.earlier_offset, r.earlier, r.later, r.later_offset
        ));
    }
    for c in &a.consumed_after_commit.examples {
        out.push_str(&format!(
            "consumed after commit: member {} read {}/{} below offset {} committed by member {}\n",
            c.member, c.partition, c.offset, c.committed, c.committed_by
        ));
    }
    out
}
