//! The summary a person reads at the end of a run.

use comfy_table::{CellAlignment, Table, presets};

use super::{EosReport, Report};
use crate::checker::eos::TxnCounts;

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
    let mut out = format!(
        "shoal-chaos: {}  workload {}, topic {} ({} partitions, RF {}, min.insync.replicas {}), \
         {:.0} s, target {}, faults {}, seed {}\n\n",
        report.verdict.to_uppercase(),
        r.workload,
        r.topic,
        r.partitions,
        r.replication_factor,
        r.min_insync_replicas,
        r.duration_s,
        r.target,
        r.faults.join(","),
        r.seed
    );

    if r.workload != "eos" {
        out.push_str(&idempotent_checks(report));
        out.push_str("\n\n");
    }
    if let Some(eos) = &report.eos {
        out.push_str(&eos_checks(eos));
        out.push_str("\n\n");
    }
    out.push_str(&faults_table(report));
    for e in &report.producer_errors {
        out.push_str(&format!("producer error: {e}\n"));
    }
    out.push_str(&idempotent_examples(report));
    if let Some(eos) = &report.eos {
        out.push_str(&eos_examples(eos));
    }
    out
}

fn verdict(n: u64) -> &'static str {
    if n == 0 { "ok" } else { "FAIL" }
}

fn right_align(t: &mut Table, columns: &[usize]) {
    for &col in columns {
        if let Some(col) = t.column_mut(col) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn idempotent_checks(report: &Report) -> String {
    let c = &report.counts;
    let a = &report.anomalies;
    let mut checks = table(&["CHECK", "COUNT", "RESULT"]);
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
    right_align(&mut checks, &[1]);
    checks.to_string()
}

/// Rows of one stage's transactions by outcome.
fn txn_rows(checks: &mut Table, stage: &str, t: &TxnCounts) {
    for (what, n) in [
        ("committed", t.committed),
        ("aborted", t.aborted),
        ("aborted on purpose", t.aborted_on_purpose),
        ("unknown outcome", t.unknown),
        ("unknown, visible", t.unknown_visible),
    ] {
        checks.add_row(vec![
            format!("{stage} txns {what}"),
            n.to_string(),
            "info".to_string(),
        ]);
    }
}

fn eos_checks(eos: &EosReport) -> String {
    let a = &eos.anomalies;
    let c = &eos.counts;
    let mut checks = table(&["EXACTLY-ONCE CHECK", "COUNT", "RESULT"]);
    for (name, n) in [
        ("aborted transactions read (G1a)", a.aborted_read.count),
        ("part of a transaction read (G1b)", a.partial_read.count),
        ("committed records lost", a.lost.count),
        (
            "committed transactions incomplete",
            a.incomplete_commit.count,
        ),
        ("records duplicated", a.duplicated.count),
        ("records reordered", a.reordered.count),
        ("inputs transformed twice", a.output_duplicated.count),
        ("inputs never transformed", a.output_missing.count),
        ("read records vanished", a.vanished.count),
        ("hung last stable offsets", a.hung_lso.count),
        ("committed offsets backwards", a.offsets_backwards.count),
    ] {
        checks.add_row(vec![
            name.to_string(),
            n.to_string(),
            verdict(n).to_string(),
        ]);
    }
    txn_rows(&mut checks, "source", &c.source);
    txn_rows(&mut checks, "transform", &c.transform);
    for (name, n) in [
        ("input records committed", c.input_committed),
        ("input records read (final)", c.input_read),
        ("output records read (final)", c.output_read),
        ("aborted records in the log", c.aborted_stored),
        ("observer reads", c.observer_reads),
        ("transform reads", c.transform_reads),
        ("LSO samples", c.lso_samples),
        ("group offset samples", c.group_offset_samples),
        ("clients rebuilt", c.client_rebuilds),
        ("client calls stuck, given up", c.stuck_calls),
    ] {
        checks.add_row(vec![name.to_string(), n.to_string(), "info".to_string()]);
    }
    right_align(&mut checks, &[1]);
    checks.to_string()
}

fn faults_table(report: &Report) -> String {
    if report.faults.is_empty() {
        return "no faults injected\n".to_string();
    }
    let mut faults = table(&[
        "#",
        "FAULT",
        "NODE",
        "VICTIM",
        "AT_S",
        "HEALED_S",
        "UNAVAILABLE_MS",
    ]);
    for (i, f) in report.faults.iter().enumerate() {
        faults.add_row(vec![
            (i + 1).to_string(),
            f.kind.name().to_string(),
            f.node.to_string(),
            f.victim.name().to_string(),
            format!("{:.1}", f.start_s),
            format!("{:.1}", f.end_s),
            ms(f.unavailable_ms),
        ]);
    }
    right_align(&mut faults, &[0, 2, 4, 5, 6]);
    format!(
        "{faults}\n\nunavailability after a fault: median {} ms, max {} ms, never recovered {}\n",
        ms(report.unavailability.median_ms),
        ms(report.unavailability.max_ms),
        report.unavailability.never_recovered
    )
}

fn idempotent_examples(report: &Report) -> String {
    let a = &report.anomalies;
    let mut out = String::new();
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

fn eos_examples(eos: &EosReport) -> String {
    let a = &eos.anomalies;
    let mut out = String::new();
    for note in &eos.notes {
        out.push_str(&format!("eos: {note}\n"));
    }
    for e in &eos.transaction_errors {
        out.push_str(&format!("eos transaction error: {e}\n"));
    }
    for r in &a.aborted_read.examples {
        out.push_str(&format!(
            "aborted read (G1a): {} was handed {} at {} {}/{}\n",
            r.reader,
            r.record,
            r.topic.name(),
            r.partition,
            r.offset
        ));
    }
    for p in &a.partial_read.examples {
        out.push_str(&format!(
            "partial read (G1b): {} ({:?}) {} of {} records visible\n",
            p.txn, p.outcome, p.seen, p.records
        ));
    }
    for k in &a.lost.examples {
        out.push_str(&format!("lost committed record: {k}\n"));
    }
    for d in &a.duplicated.examples {
        out.push_str(&format!(
            "duplicated: {} in {} at {:?}\n",
            d.record,
            d.topic.name(),
            d.at
        ));
    }
    for r in &a.reordered.examples {
        out.push_str(&format!(
            "reordered: {} {} offset {} holds {} before {} at offset {}\n",
            r.topic.name(),
            r.partition,
            r.earlier_offset,
            r.earlier,
            r.later,
            r.later_offset
        ));
    }
    for d in &a.output_duplicated.examples {
        let outputs: Vec<String> = d
            .outputs
            .iter()
            .map(|(k, p, o)| format!("{k} at {p}/{o}"))
            .collect();
        out.push_str(&format!(
            "input transformed twice: {} -> {}\n",
            d.input,
            outputs.join(", ")
        ));
    }
    for m in &a.output_missing.examples {
        out.push_str(&format!(
            "input never transformed: {} at {}/{}\n",
            m.input, m.partition, m.offset
        ));
    }
    for v in &a.vanished.examples {
        out.push_str(&format!(
            "vanished: {} read {} at {} {}/{}, the final read holds {}\n",
            v.reader,
            v.record,
            v.topic.name(),
            v.partition,
            v.offset,
            v.final_holds
                .map_or_else(|| "nothing".to_string(), |k| k.to_string())
        ));
    }
    for h in &a.hung_lso.examples {
        out.push_str(&format!(
            "hung LSO: {} {} stuck at {} from {:.1} s to {:.1} s{}\n",
            h.topic.name(),
            h.partition,
            h.lso,
            h.from_s,
            h.until_s,
            if h.still_stuck { " (still stuck)" } else { "" }
        ));
    }
    for b in &a.offsets_backwards.examples {
        out.push_str(&format!(
            "committed offset backwards: partition {} answered {} at {:.1} s, below {} (an earlier {})\n",
            b.partition,
            b.offset,
            b.at_us as f64 / 1e6,
            b.floor,
            b.floor_from
        ));
    }
    out
}
