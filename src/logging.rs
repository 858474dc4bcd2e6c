//! Logging setup: JSON lines for the controller, compact text for the CLI, level from
//! `PBO_LOG` (then `RUST_LOG`), format overridable with `PBO_LOG_FORMAT=json|text`.

use tracing_subscriber::EnvFilter;

/// Which log format a command uses unless `PBO_LOG_FORMAT` says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Install the global subscriber (logs go to stderr).
pub fn init(default_format: LogFormat, default_level: &str) {
    let filter = std::env::var("PBO_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let format = match std::env::var("PBO_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => default_format,
    };
    let subscriber = subscriber(format, filter, std::io::stderr);
    if let Err(err) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("logging already initialised: {err}");
    }
}

/// The subscriber the operator logs through, writing to `writer`. Tests use it to capture
/// exactly what the operator would print.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(
            builder
                .compact()
                .with_target(false)
                .with_ansi(false)
                .finish(),
        ),
    }
}
