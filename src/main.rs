use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = partner_billing_operator::cli::Cli::parse();
    let code = partner_billing_operator::cli::main(cli).await;
    std::process::exit(code);
}
