use clap::Parser;

fn main() {
    let cli = partner_billing_operator::cli::Cli::parse();
    // `plan` and `apply` reconcile one object after another: one thread runs them (on a
    // multi-thread runtime every AWS answer woke another worker thread, and the context
    // switches cost more CPU than the calls). The controller reconciles concurrently.
    let runtime = match cli.command {
        partner_billing_operator::cli::Command::Plan(_)
        | partner_billing_operator::cli::Command::Apply(_) => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("a Tokio runtime");
    let code = runtime.block_on(partner_billing_operator::cli::main(cli));
    std::process::exit(code);
}
