//! What the API server itself decides about crds/: it accepts and establishes them, prints
//! each kind's columns, explains their fields, and rejects the bad-input corpus.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use partner_billing_operator::crdgen;

use super::fixtures;
use super::harness::{CRD_SCHEMAS, cluster, poll};

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn crds_apply_server_side_and_are_established() {
    let c = cluster();
    let _schemas = CRD_SCHEMAS.lock().await;
    let crds_dir = c.root.join("crds");
    let out = c.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "pbo-e2e",
        "-f",
        crds_dir.to_str().expect("path"),
    ]);
    let api: Api<CustomResourceDefinition> = Api::all(c.admin().await);
    for crd in crdgen::all() {
        let name = crd.metadata.name.clone().expect("name");
        assert!(out.contains(&name), "{name} not applied: {out}");
        let found = api.get(&name).await.expect("CRD on the server");
        let conditions = found.status.and_then(|s| s.conditions).unwrap_or_default();
        for t in ["NamesAccepted", "Established"] {
            assert!(
                conditions
                    .iter()
                    .any(|x| x.type_ == t && x.status == "True"),
                "{name}: {t} not True: {conditions:?}"
            );
        }
        // What the server stored is what we generated (it did not prune or default away
        // parts of the schema).
        assert_eq!(
            serde_json::to_value(&found.spec.versions[0].schema).expect("json"),
            serde_json::to_value(&crd.spec.versions[0].schema).expect("json"),
            "{name}: the stored schema differs from crds/"
        );
    }
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn kubectl_get_prints_every_kinds_columns() {
    let c = cluster();
    let ns = c.namespace("pbo-e2e-columns").await;
    let mut objects = vec![fixtures::secret(&ns, "acme-aws")];
    objects.extend(fixtures::all(&ns, "columns"));
    objects.push(fixtures::billing_transfer(&ns));
    for o in &objects {
        let r = c.kubectl_stdin(&["create", "-f", "-"], &o.to_string());
        assert!(
            r.ok,
            "{} {}: the server refused a valid object: {}",
            fixtures::kind(o),
            fixtures::name(o),
            r.stderr
        );
    }
    let columns_gap = regex::Regex::new(r"\s{2,}").expect("regex");
    for crd in crdgen::all() {
        let plural = &crd.spec.names.plural;
        let columns = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        assert!(!columns.is_empty(), "{plural} has no printer columns");
        let header = |wide: bool| {
            let mut args = vec!["get", plural.as_str(), "-n", ns.as_str()];
            if wide {
                args.extend(["-o", "wide"]);
            }
            let out = c.kubectl_ok(&args);
            let line = out.lines().next().unwrap_or_default().to_string();
            columns_gap
                .split(line.trim())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let expected = |wide: bool| {
            std::iter::once("NAME".to_string())
                .chain(
                    columns
                        .iter()
                        .filter(|col| wide || col.priority.unwrap_or(0) == 0)
                        .map(|col| col.name.to_uppercase()),
                )
                .collect::<Vec<_>>()
        };
        assert_eq!(header(false), expected(false), "kubectl get {plural}");
        assert_eq!(header(true), expected(true), "kubectl get {plural} -o wide");
    }
    c.delete_namespace(&ns).await;
}

#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn kubectl_explain_shows_the_field_docs() {
    let c = cluster();
    let _schemas = CRD_SCHEMAS.lock().await;
    for crd in crdgen::all() {
        let plural = crd.spec.names.plural.clone();
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .and_then(|s| s.open_api_v3_schema)
            .expect("schema");
        let spec = schema
            .properties
            .as_ref()
            .and_then(|p| p.get("spec"))
            .cloned()
            .expect("spec schema");
        let fields = spec.properties.clone().unwrap_or_default();
        assert!(!fields.is_empty(), "{plural}.spec has no fields");
        let target = format!("{plural}.spec");
        // The server publishes a new CRD's OpenAPI a moment after it is established.
        let out = poll(
            &format!("kubectl explain {target} answering"),
            Duration::from_secs(60),
            || {
                let r = c.kubectl(&["explain", &target]);
                r.ok.then_some(r.stdout)
            },
        )
        .await;
        let flat = words(&out);
        assert!(
            flat.contains(&format!("KIND: {}", crd.spec.names.kind)),
            "{out}"
        );
        if let Some(d) = &spec.description {
            assert!(flat.contains(&words(d)), "{target}: no {d:?} in:\n{out}");
        }
        for (field, s) in &fields {
            assert!(
                out.lines().any(|l| l.starts_with(&format!("  {field}\t"))),
                "{target}: field {field} not listed:\n{out}"
            );
            let d = s
                .description
                .as_deref()
                .unwrap_or_else(|| panic!("{target}.{field} has no description"));
            assert!(
                flat.contains(&words(d)),
                "{target}.{field}: its doc {d:?} is not shown:\n{out}"
            );
        }
    }
    // The example of the issue, word for word.
    let out = words(&c.kubectl_ok(&["explain", "linkedaccounts.spec"]));
    assert!(
        out.contains("deletionPolicy <string> enum: Retain, Remove, Close What happens in AWS when this object is deleted"),
        "{out}"
    );
}

/// One case of tests/bad-input: its documents (raw YAML, so that kubectl parses them as a
/// user's kubectl would) and its header.
struct Case {
    file: String,
    docs: Vec<String>,
    expect: Option<String>,
    expect_server: Option<String>,
    expect_condition: Option<String>,
}

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad-input")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read case");
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .map(str::to_string)
            };
            let mut docs = vec![String::new()];
            for line in text.lines() {
                if line.trim_end() == "---" {
                    docs.push(String::new());
                } else if let Some(d) = docs.last_mut() {
                    d.push_str(line);
                    d.push('\n');
                }
            }
            docs.retain(|d| d.lines().any(|l| l.starts_with("kind:")));
            Case {
                file: path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                docs,
                expect: header("expect"),
                expect_server: header("expect-server"),
                expect_condition: header("expect-condition"),
            }
        })
        .collect()
}

/// Every `# expect:` case is rejected by the server with its message (`# expect-server:` when
/// the server words it differently from our own checker); every `# expect-condition:` case is
/// accepted (the reconciler, not the schema, refuses it). Two documents: the first is stored,
/// then the second applied over it by the same field manager.
#[tokio::test]
#[ignore = "needs a real API server: make cluster-test"]
async fn the_server_rejects_every_bad_input_with_its_message() {
    let c = cluster();
    let _schemas = CRD_SCHEMAS.lock().await;
    let ns = c.namespace("pbo-e2e-bad-input").await;
    let cases = cases();
    assert!(cases.len() >= 70, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for case in &cases {
        // The corpus names namespace `billing`; each case goes to this run's namespace.
        let docs: Vec<String> = case
            .docs
            .iter()
            .map(|d| d.replace("namespace: billing\n", &format!("namespace: {ns}\n")))
            .collect();
        let (old, new) = match docs.as_slice() {
            [new] => (None, new),
            [old, new] => (Some(old), new),
            _ => {
                failures.push(format!("{}: {} documents", case.file, docs.len()));
                continue;
            }
        };
        let apply = [
            "apply",
            "--server-side",
            "--field-manager",
            "pbo-e2e",
            "-n",
            &ns,
        ];
        if let Some(old) = old {
            let r = c.kubectl_stdin(&[&apply[..], &["-f", "-"]].concat(), old);
            if !r.ok {
                failures.push(format!(
                    "{}: the stored object was refused: {}",
                    case.file, r.stderr
                ));
                continue;
            }
        }
        let r = c.kubectl_stdin(
            &[&apply[..], &["--dry-run=server", "-f", "-"]].concat(),
            new,
        );
        let said = words(&format!("{}{}", r.stdout, r.stderr));
        match (&case.expect_server, &case.expect, &case.expect_condition) {
            (server, Some(expect), _) => {
                let want = server.as_ref().unwrap_or(expect);
                report.push(format!("{}: {}", case.file, said));
                if r.ok {
                    failures.push(format!("{}: accepted; expected {want:?}", case.file));
                } else if !said.contains(want.as_str()) {
                    failures.push(format!(
                        "{}: expected {want:?}; the server said: {said}",
                        case.file
                    ));
                }
            }
            (_, None, Some(_)) => {
                if !r.ok {
                    failures.push(format!(
                        "{}: a reconciler-judged case must pass the schema; the server said: {said}",
                        case.file
                    ));
                }
            }
            _ => failures.push(format!("{}: no expect header", case.file)),
        }
        if old.is_some() {
            let r = c.kubectl_stdin(&["delete", "-n", &ns, "-f", "-"], &docs[0]);
            assert!(
                r.ok,
                "{}: delete the stored object: {}",
                case.file, r.stderr
            );
        }
    }
    if std::env::var_os("PBO_E2E_SHOW_MESSAGES").is_some() {
        eprintln!("{}", report.join("\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    c.delete_namespace(&ns).await;
}
