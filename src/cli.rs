//! Command line: `run`, `crd`, `iam`, `plan -f` (with `--prune`), `apply -f`, `import`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::aws::{AwsOptions, SdkConnector};
use crate::controller::{self, Context, Settings};
use crate::filemode::{self, output};
use crate::logging::{self, LogFormat};
use crate::metrics::Metrics;
use crate::reconcile::ReconcileContext;
use crate::secrets::KubeSecrets;

#[derive(Parser, Debug)]
#[command(
    name = "partner-billing-operator",
    version,
    about = "AWS partner billing as Kubernetes resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the cluster in the kubeconfig or the pod's service account.
    Run(RunArgs),
    /// Print every CustomResourceDefinition as YAML.
    Crd(CrdArgs),
    /// Print the least-privilege IAM policy of each family of kinds.
    Iam(CrdArgs),
    /// Show what would change in AWS for the given manifests, without writing anything.
    /// Exit status: 0 no changes, 2 changes pending, 1 error; with --prune also 3: something
    /// would be deleted, closed, removed from the organization or replaced (review required).
    Plan(FileArgs),
    /// Reconcile the given manifests once, in dependency order, and print the statuses.
    /// Exit status: 0 when every object is ready, 1 otherwise.
    Apply(FileArgs),
    /// Write manifests for an organization and Billing Conductor setup that exist already
    /// (OUs, SCPs, accounts as adopt, pricing plans and rules, billing groups, custom line
    /// items of the open billing periods), every object with `managementPolicy: Observe`, so
    /// that applying them changes nothing in AWS until a person switches one to Manage.
    /// Exit status: 0 written, 1 error.
    Import(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Manifest file (or folder) holding the one Payer to read through, with its credentials
    /// Secret if it uses one. It is not copied into the output.
    #[arg(long, required = true)]
    pub payer: Vec<PathBuf>,
    /// Folder to write the manifests into (one file per kind; existing files are not
    /// overwritten).
    #[arg(short = 'o', long = "output-dir", required = true)]
    pub out: PathBuf,
    /// Namespace of the Payer when its manifest names none (the imported objects go there).
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Namespace to watch (repeatable). Default: all namespaces.
    #[arg(
        long = "namespace",
        short = 'n',
        env = "PBO_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Address of the /healthz, /readyz and /metrics endpoints.
    #[arg(long, default_value = "0.0.0.0:8080", env = "PBO_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// Seconds between re-checks of an object when nothing happens.
    #[arg(long, default_value_t = 300, env = "PBO_RESYNC_SECONDS")]
    pub resync_seconds: u64,
    /// Seconds between re-checks of an object stuck on an error that needs a person.
    #[arg(long, default_value_t = 900)]
    pub terminal_recheck_seconds: u64,
    /// Reconciles at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Run the controllers only while holding a Lease (for more than one replica). The Lease
    /// lives in the pod's namespace (`POD_NAMESPACE`).
    #[arg(long, env = "PBO_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "partner-billing-operator")]
    pub lease_name: String,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Write one file per CRD (or policy) into this folder instead of printing them.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// Manifest files or folders (multi-document YAML; folders are read recursively).
    #[arg(short = 'f', long = "filename", required = true)]
    pub paths: Vec<PathBuf>,
    /// Namespace for objects that name none.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: output::Format,
    /// `apply` only: seconds to keep reconciling objects whose work is in progress (account
    /// creations, dependencies created in the same run) before reporting.
    #[arg(long, default_value_t = 300)]
    pub wait: u64,
    /// Compare every object's tags with AWS when they are due (like `terraform plan
    /// -refresh`). Manifests without a status are always due: one ListTagsForResource per
    /// account (and OU, SCP, billing resource) on every run, the largest share of a run's AWS
    /// calls. `--refresh-tags=false` reads an account's tags only when the run is about to
    /// write to it (its ownership mark is checked first): tag drift is then neither reported
    /// nor corrected, and tag changes in the spec wait for a run with the default. Billing
    /// objects, OUs and SCPs still read theirs (their ownership is judged from them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh_tags: bool,
    /// `plan` only: also list the AWS objects of the folder's Payers that carry this
    /// operator's owner tag but have no manifest in the folder (what a GitOps prune would
    /// delete), with what their deletion would do (retain, remove, close, delete), and the
    /// replacements and deletions the changed manifests make. Writes nothing. Exit status 3
    /// when anything would be deleted, closed, removed or replaced; JSON output carries it in
    /// `prune` and `summary.requiresReview`.
    #[arg(long)]
    pub prune: bool,
    /// With --prune: the manifests as they were before the change (for example a checkout of
    /// the target branch); the deletion policy of an object whose manifest was removed is read
    /// from there. Without it the most destructive policy of the kind is assumed (and said).
    #[arg(long = "previous", requires = "prune")]
    pub previous: Vec<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(clap::Args, Debug)]
pub struct AwsArgs {
    /// Attempts per AWS call, the first included.
    #[arg(long, default_value_t = 5)]
    pub aws_max_attempts: u32,
    /// First retry delay of the AWS SDK, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub aws_initial_backoff_ms: u64,
}

impl AwsArgs {
    fn options(&self) -> AwsOptions {
        AwsOptions {
            // The SDK reads AWS_ENDPOINT_URL (and per-service variants) itself.
            endpoint_url: None,
            max_attempts: self.aws_max_attempts.max(1),
            initial_backoff: Duration::from_millis(self.aws_initial_backoff_ms),
            operator_credentials: None,
        }
    }
}

/// Run the command and return the process exit status.
pub async fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Crd(args) => crd(args),
        Command::Iam(args) => iam(args),
        Command::Plan(args) => file_mode(args, true).await,
        Command::Apply(args) => file_mode(args, false).await,
        Command::Run(args) => run(args).await,
        Command::Import(args) => import(args).await,
    }
}

async fn import(args: ImportArgs) -> i32 {
    logging::init(LogFormat::Text, "warn");
    let connector = Arc::new(SdkConnector::new(args.aws.options(), Metrics::shared()));
    match crate::import::import(&args.payer, &args.namespace, &args.out, connector).await {
        Ok(done) => {
            for (kind, n) in &done.counts {
                println!("{kind}: {n}");
            }
            for f in &done.files {
                println!("wrote {}", f.display());
            }
            for n in &done.notes {
                println!("note: {n}");
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn iam(args: CrdArgs) -> i32 {
    let result = match &args.dir {
        Some(dir) => crate::iam::write_dir(dir),
        None => {
            for f in crate::iam::FAMILIES {
                println!("# {} ({})", f.name, f.kinds.join(", "));
                print!("{}", crate::iam::to_json(f));
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: could not write the IAM policies: {e}");
            1
        }
    }
}

fn crd(args: CrdArgs) -> i32 {
    let result = match &args.dir {
        None => crate::crdgen::all_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| e.to_string()),
        Some(dir) => crate::crdgen::write_dir(dir),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: could not render CRDs: {e}");
            1
        }
    }
}

async fn file_mode(args: FileArgs, plan_only: bool) -> i32 {
    logging::init(LogFormat::Text, "warn");
    let manifests = match filemode::load(&args.paths, &args.namespace) {
        Ok(m) => m,
        Err(problems) => {
            eprintln!("error: the manifests are not valid:");
            for p in problems {
                eprintln!("  {p}");
            }
            return 1;
        }
    };
    if manifests.object_count() == 0 {
        eprintln!("error: no partnerbilling.io objects found in the given paths");
        return 1;
    }
    let metrics = Metrics::shared();
    let connector = Arc::new(SdkConnector::new(args.aws.options(), metrics));
    let options = filemode::RunOptions {
        refresh_tags: args.refresh_tags,
    };
    if args.prune {
        return prune_plan(&args, plan_only, manifests, connector).await;
    }
    let report = if plan_only {
        filemode::plan_with(manifests, connector, options).await
    } else {
        let wait = Duration::from_secs(args.wait);
        filemode::apply_with(manifests, connector, wait, options).await
    };
    let text = match (args.output, plan_only) {
        (output::Format::Json, _) => None,
        (output::Format::Yaml, false) => Some(output::yaml(&report)),
        (output::Format::Yaml, true) => {
            eprintln!("note: plan prints text or json; showing json");
            None
        }
        (output::Format::Text, true) => Some(output::plan_text(&report)),
        (output::Format::Text, false) => Some(output::apply_text(&report)),
    };
    match text {
        Some(text) => print!("{text}"),
        // Written as it is rendered (not built in memory first: see `output::write_json`).
        None => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if let Err(e) = output::write_json(&report, &mut out).and_then(|()| out.flush()) {
                eprintln!("error: could not write the report: {e}");
                return 1;
            }
        }
    }
    if plan_only {
        filemode::plan_exit_code(&report)
    } else {
        filemode::apply_exit_code(&report)
    }
}

/// `plan --prune`: the plan and the prune preview (see [`filemode::prune`]).
async fn prune_plan(
    args: &FileArgs,
    plan_only: bool,
    manifests: filemode::Manifests,
    connector: Arc<SdkConnector>,
) -> i32 {
    if !plan_only {
        eprintln!("error: --prune is a plan option; apply never prunes");
        return 1;
    }
    let previous = if args.previous.is_empty() {
        None
    } else {
        match filemode::load(&args.previous, &args.namespace) {
            Ok(m) => Some(m),
            Err(problems) => {
                eprintln!("error: the --previous manifests are not valid:");
                for p in problems {
                    eprintln!("  {p}");
                }
                return 1;
            }
        }
    };
    let (report, preview) = filemode::prune::plan_with_prune(manifests, previous, connector).await;
    match args.output {
        output::Format::Text => print!(
            "{}{}",
            output::plan_text(&report),
            filemode::prune::text(&preview)
        ),
        _ => print!("{}", filemode::prune::json(&report, &preview)),
    }
    filemode::prune::exit_code(&report, &preview)
}

/// The controller's client and the leader election's own: no retry layer (it would retry
/// 429/503/504 for far longer than the renew deadline) and a read timeout; each attempt is
/// bounded as well. `None` (logged) when no API server can be reached.
async fn clients() -> Option<(kube::Client, kube::Client)> {
    let config = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach a Kubernetes API server (no kubeconfig or in-cluster config)");
            return None;
        }
    };
    let mut election_config = config.clone();
    election_config.default_retry = false;
    election_config.read_timeout = Some(Duration::from_secs(5));
    election_config.reset_reader_on_write = true;
    match (
        kube::Client::try_from(config),
        kube::Client::try_from(election_config),
    ) {
        (Ok(c), Ok(e)) => Some((c, e)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot make a Kubernetes client");
            None
        }
    }
}

/// The controller's context: AWS through the SDK, Secrets from the cluster, `args`' settings.
fn controller_context(args: &RunArgs, client: kube::Client, metrics: Arc<Metrics>) -> Context {
    let connector = Arc::new(SdkConnector::new(args.aws.options(), metrics.clone()));
    let reconcile = ReconcileContext::new(connector, Arc::new(KubeSecrets::new(client.clone())));
    let settings = Settings {
        resync: Duration::from_secs(args.resync_seconds.max(10)),
        terminal_recheck: Duration::from_secs(args.terminal_recheck_seconds.max(30)),
        concurrency: args.concurrency.max(1),
        ..Settings::default()
    };
    Context::new(client, reconcile, metrics, settings)
}

/// The leader election `args` ask for, in the pod's namespace under the pod's name.
fn leader_election(
    args: &RunArgs,
    client: kube::Client,
    readiness: &Arc<controller::health::Readiness>,
) -> Option<controller::leader::LeaderElection> {
    args.leader_election.then(|| {
        let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
        let identity = std::env::var("POD_NAME")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| fallback_identity(hostname()));
        controller::leader::LeaderElection::new(client, &namespace, &args.lease_name, &identity)
            .with_readiness(readiness.clone())
    })
}

async fn run(args: RunArgs) -> i32 {
    logging::init(LogFormat::Json, "info");
    let Some((client, election_client)) = clients().await else {
        return 1;
    };
    let metrics = Metrics::shared();
    let ctx = controller_context(&args, client, metrics.clone());
    // Ready = can do its job (API server and CRDs there), leader or standby alike.
    let readiness = Arc::new(controller::health::Readiness::default());
    let api_check = tokio::spawn(controller::health::watch_api(
        ctx.client.clone(),
        readiness.clone(),
        Duration::from_secs(10),
    ));
    let mut server = tokio::spawn(controller::health::serve(
        args.metrics_addr,
        readiness.clone(),
        ctx.sync.clone(),
        metrics,
    ));
    let election = leader_election(&args, election_client, &readiness);
    if let Some(e) = &election {
        readiness.set_role(controller::health::Role::Standby);
        tokio::select! {
            _ = e.acquire() => readiness.set_role(controller::health::Role::Leader),
            res = &mut server => {
                tracing::error!(result = ?res, "health server stopped");
                return 1;
            }
        }
    }
    tracing::info!(namespaces = ?args.namespaces, "starting controller");
    let lost = async {
        match &election {
            Some(e) => e.hold().await,
            None => futures::future::pending().await,
        }
    };
    let code = tokio::select! {
        _ = controller::run(ctx, args.namespaces) => {
            // A shutdown signal stopped the controllers: hand the lease over at once.
            if let Some(e) = &election {
                e.release().await;
            }
            0
        }
        why = lost => {
            tracing::error!(?why, "lost the leader lease; exiting so that a fresh process waits for it");
            1
        }
        res = server => {
            tracing::error!(result = ?res, "health server stopped");
            1
        }
    };
    api_check.abort();
    code
}

/// This machine's name: `HOSTNAME`, else `/etc/hostname` (a pod's name in a container).
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The leader-election identity without `POD_NAME`: the host name plus a random suffix, so that
/// two replicas never share one (the process id is 1 in most containers, and two processes on
/// one host share the host name).
fn fallback_identity(hostname: Option<String>) -> String {
    let host = hostname.unwrap_or_else(|| "partner-billing-operator".to_string());
    format!("{host}-{:08x}", fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_identities_name_the_host_and_differ() {
        let a = fallback_identity(Some("node-a".into()));
        let b = fallback_identity(Some("node-a".into()));
        assert!(a.starts_with("node-a-"), "{a}");
        assert_eq!(a.len(), "node-a-".len() + 8);
        assert_ne!(a, b, "two replicas on one host get different identities");
        assert!(fallback_identity(None).starts_with("partner-billing-operator-"));
    }
}
