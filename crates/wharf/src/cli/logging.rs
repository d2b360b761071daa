//! Log output as `log:` asks: level, text or json (logstash is json with `@timestamp`-style
//! fields), and static `fields` attached to every line.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormatter, LogLevel};

/// Installs the global subscriber; `RUST_LOG` overrides `log.level` for debugging.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let level = match log.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match log.formatter {
        LogFormatter::Text => builder.try_init(),
        LogFormatter::Json | LogFormatter::Logstash => {
            builder.json().flatten_event(true).try_init()
        }
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    if !log.fields.is_empty() {
        let fields: Vec<String> = log.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::info!(fields = %fields.join(" "), "log.fields");
    }
    Ok(())
}
