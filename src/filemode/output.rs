//! Rendering `plan` and `apply` reports as text, JSON or YAML, and the exit status each
//! command returns.

use crate::reconcile::ChangeAction;
use crate::reconcile::management::{Management, describe};
use crate::reconcile::report::{ObjectReport, Report};

/// Output formats of `plan` and `apply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

/// The `plan` report as text: per object, its changes and findings.
pub fn plan_text(report: &Report) -> String {
    let mut out = String::new();
    for o in &report.objects {
        out.push_str(&format!("{} {}/{}: ", o.kind, o.namespace, o.name));
        if o.error {
            out.push_str(&format!("error: {}: {}\n", o.reason, o.message));
            continue;
        }
        if held_text(o, &mut out) {
            continue;
        }
        if o.changes.is_empty() {
            out.push_str("no changes\n");
        } else {
            out.push_str(&format!("{} change(s)\n", o.changes.len()));
            for c in &o.changes {
                let sign = match c.action {
                    ChangeAction::Create => "+",
                    ChangeAction::Update => "~",
                    ChangeAction::Delete => "-",
                };
                out.push_str(&format!(
                    "  {sign} {} {}: {}\n",
                    action_word(c.action),
                    c.target,
                    c.detail
                ));
            }
        }
        for f in &o.findings {
            out.push_str(&format!("  = {f}\n"));
        }
    }
    out.push_str(&format!(
        "\nPlan: {} object(s) {}, {} change(s), {} error(s).\n",
        report.objects.len(),
        summary_kinds(report),
        report.changes(),
        report.errors()
    ));
    out.push_str(&held_summary(report));
    out
}

/// The lines of a paused or Observe object (true when it is one).
fn held_text(o: &ObjectReport, out: &mut String) -> bool {
    match o.management {
        Management::Manage => false,
        Management::Paused => {
            out.push_str("paused: no AWS call is made for it (not even reads)\n");
            true
        }
        Management::Observe if o.drift.is_empty() && !o.ready => {
            out.push_str(&format!(
                "observed (managementPolicy Observe), not comparable yet: {}: {}\n",
                o.reason, o.message
            ));
            true
        }
        Management::Observe if o.drift.is_empty() => {
            out.push_str(
                "observed (managementPolicy Observe): no drift, nothing will be written\n",
            );
            true
        }
        Management::Observe => {
            out.push_str(&format!(
                "observed (managementPolicy Observe): {} difference(s), nothing will be written\n",
                o.drift.len()
            ));
            for c in &o.drift {
                out.push_str(&format!("  ! drift: {}\n", describe(c)));
            }
            true
        }
    }
}

/// A line on Observe drift and paused objects, when there are any.
fn held_summary(report: &Report) -> String {
    let observed = report
        .objects
        .iter()
        .filter(|o| o.management == Management::Observe)
        .count();
    if observed == 0 && report.paused() == 0 {
        return String::new();
    }
    format!(
        "Not written: {observed} object(s) under managementPolicy Observe with {} difference(s) of drift, {} paused object(s).\n",
        report.drift(),
        report.paused()
    )
}

fn action_word(a: ChangeAction) -> &'static str {
    match a {
        ChangeAction::Create => "create",
        ChangeAction::Update => "update",
        ChangeAction::Delete => "delete",
    }
}

fn summary_kinds(report: &Report) -> String {
    let parts: Vec<String> = report
        .kinds()
        .into_iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!("({})", parts.join(", "))
}

/// The `apply` report as a table.
pub fn apply_text(report: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "KIND".into(),
        "NAMESPACE".into(),
        "NAME".into(),
        "READY".into(),
        "REASON".into(),
        "MESSAGE".into(),
    ]];
    for o in &report.objects {
        let ready = if o.ready { "True" } else { "False" };
        rows.push([
            o.kind.clone(),
            o.namespace.clone(),
            o.name.clone(),
            ready.into(),
            o.reason.clone(),
            o.message.clone(),
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (i, w) in widths.iter_mut().enumerate() {
            *w = (*w).max(r[i].chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}   ", r[i], w = *w));
        }
        out.push_str(&r[5]);
        out.push('\n');
    }
    for o in report.objects.iter().filter(|o| o.kind == "Payer") {
        let costs: Vec<&String> = o
            .findings
            .iter()
            .filter(|f| f.starts_with("cost") || f.starts_with("Cost Explorer"))
            .collect();
        if !costs.is_empty() {
            out.push_str(&format!("\nCosts of Payer {}/{}:\n", o.namespace, o.name));
            for line in costs {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    for o in report.objects.iter().filter(|o| !o.drift.is_empty()) {
        out.push_str(&format!(
            "\nDrift of {} {}/{} (managementPolicy Observe: not written):\n",
            o.kind, o.namespace, o.name
        ));
        for c in &o.drift {
            out.push_str(&format!("  ! {}\n", describe(c)));
        }
    }
    out.push_str(&format!(
        "\nApplied: {} object(s) {}, {} change(s), {} not ready.\n",
        report.objects.len(),
        summary_kinds(report),
        report.changes(),
        report.not_ready()
    ));
    out.push_str(&held_summary(report));
    out
}

/// Exit status of `plan`: 0 no changes, 2 changes pending, 1 error (as `terraform plan -detailed-exitcode`).
pub fn plan_exit_code(report: &Report) -> i32 {
    if report.errors() > 0 {
        1
    } else if report.changes() > 0 {
        2
    } else {
        0
    }
}

/// Exit status of `apply`: 0 when every object is Ready, 1 otherwise.
pub fn apply_exit_code(report: &Report) -> i32 {
    if report.not_ready() > 0 { 1 } else { 0 }
}

/// JSON rendering (both commands).
pub fn json(report: &Report) -> String {
    let mut out = Vec::new();
    // Writing to memory fails only where serializing does (as `to_string_pretty` would).
    if write_json(report, &mut out).is_err() {
        return "\n".to_string();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// As [`json`], written to `w` one object at a time: the report is not copied into one JSON
/// tree first (at 10,000 objects that copy and the text built from it were most of `apply`'s
/// peak memory). The same bytes as [`json`]: every object's keys sorted, two-space indents,
/// a newline at the end.
pub fn write_json(report: &Report, mut w: impl std::io::Write) -> std::io::Result<()> {
    let summary = serde_json::json!({
        "objects": report.objects.len(),
        "changes": report.changes(),
        "errors": report.errors(),
        "notReady": report.not_ready(),
        "drift": report.drift(),
        "paused": report.paused(),
    });
    // Keys in sorted order, as a JSON tree (`serde_json::Map`) has them.
    let rendered = Rendered {
        objects: Objects(&report.objects),
        summary,
    };
    let mut serializer = serde_json::Serializer::pretty(&mut w);
    serde::Serialize::serialize(&rendered, &mut serializer)?;
    w.write_all(b"\n")
}

#[derive(serde::Serialize)]
struct Rendered<'a> {
    objects: Objects<'a>,
    summary: serde_json::Value,
}

struct Objects<'a>(&'a [ObjectReport]);

impl serde::Serialize for Objects<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(SortedKeys))
    }
}

/// One object's report as a JSON tree renders it (keys sorted at every level), made one
/// object at a time.
struct SortedKeys<'a>(&'a ObjectReport);

impl serde::Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_value(self.0)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// YAML rendering of `apply`: the objects with their status, as a multi-document stream.
pub fn yaml(report: &Report) -> String {
    let mut out = String::new();
    for o in &report.objects {
        if let Some(obj) = &o.object {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(obj).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Change;
    use crate::reconcile::report::ObjectReport;

    fn obj(changes: usize, ready: bool) -> ObjectReport {
        ObjectReport {
            kind: "Payer".into(),
            namespace: "ns".into(),
            name: "p".into(),
            changes: (0..changes)
                .map(|i| Change {
                    action: ChangeAction::Create,
                    target: format!("thing/{i}"),
                    detail: "new".into(),
                })
                .collect(),
            findings: vec!["found".into()],
            ready,
            synced: ready,
            error: !ready,
            reason: if ready {
                "Verified".into()
            } else {
                "AccessDenied".into()
            },
            message: if ready {
                String::new()
            } else {
                "denied".into()
            },
            object: None,
            management: Management::Manage,
            drift: Vec::new(),
        }
    }

    #[test]
    fn exit_codes_tell_no_changes_pending_and_error_apart() {
        assert_eq!(
            plan_exit_code(&Report {
                objects: vec![obj(0, true)]
            }),
            0
        );
        assert_eq!(
            plan_exit_code(&Report {
                objects: vec![obj(0, true), obj(2, true)]
            }),
            2
        );
        assert_eq!(
            plan_exit_code(&Report {
                objects: vec![obj(2, true), obj(0, false)]
            }),
            1
        );
    }

    #[test]
    fn json_is_written_object_by_object_as_the_whole_tree_rendered_it() {
        let mut applied = obj(2, true);
        applied.object = Some(serde_json::json!({
            "kind": "LinkedAccount", "apiVersion": "partnerbilling.io/v1alpha1",
            "metadata": {"name": "a", "namespace": "ns", "labels": {"z": "1", "a": "2"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "accountId": "1"}
        }));
        let mut observed = obj(0, false);
        observed.management = Management::Observe;
        observed.drift = obj(1, true).changes;
        let r = Report {
            objects: vec![applied, observed, obj(0, true)],
        };
        // The rendering before it was streamed: the report as one JSON tree.
        let summary = serde_json::json!({
            "objects": r.objects.len(), "changes": r.changes(), "errors": r.errors(),
            "notReady": r.not_ready(), "drift": r.drift(), "paused": r.paused(),
        });
        let tree = serde_json::json!({"objects": r.objects, "summary": summary});
        let expected = serde_json::to_string_pretty(&tree).unwrap() + "\n";
        assert_eq!(json(&r), expected);
        let mut written = Vec::new();
        write_json(&r, &mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
        assert!(expected.contains("\"drift\": ["), "{expected}");
        let empty = Report { objects: vec![] };
        assert_eq!(
            json(&empty),
            serde_json::to_string_pretty(&serde_json::json!({"objects": [], "summary": {
                "objects": 0, "changes": 0, "errors": 0, "notReady": 0, "drift": 0, "paused": 0}}))
            .unwrap()
                + "\n"
        );
    }

    #[test]
    fn text_and_json_render_changes_and_errors() {
        let r = Report {
            objects: vec![obj(1, true), obj(0, false)],
        };
        let text = plan_text(&r);
        assert!(text.contains("+ create thing/0: new"), "{text}");
        assert!(text.contains("error: AccessDenied: denied"), "{text}");
        assert!(text.contains("1 change(s), 1 error(s)"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["summary"]["changes"], 1);
        assert_eq!(v["objects"][0]["changes"][0]["action"], "create");
        let table = apply_text(&r);
        assert!(table.lines().next().unwrap().starts_with("KIND"));
    }
}
