//! `log.hooks` of `type: mail`: every log event at one of `levels` becomes a mail, subject
//! `[level] host: message` and the fields in the body, as distribution's hook writes it.
//!
//! Sent through `options.smtp.addr` with STARTTLS when the relay offers it (implicit TLS on
//! port 465), plain SMTP when `insecure` is set, and AUTH PLAIN/LOGIN when `username` is set.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::{Layer, Registry};

use super::fields::Captured;
use super::{BoxedLayer, Outbox, SELF_TARGET, is_own};
use crate::config::LogHook;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest message text put in a subject line.
const SUBJECT_MAX: usize = 200;

/// The layer of one mail hook: copies matching events into its queue.
pub(crate) struct MailHook {
    levels: Vec<Level>,
    outbox: Arc<Outbox<Captured>>,
}

/// The relay and envelope of one hook, checked at start-up.
struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    host: String,
}

impl MailHook {
    /// Checks the hook, spawns its sender task on `rt` and returns its filtered layer.
    pub(crate) fn start(hook: &LogHook, rt: &tokio::runtime::Handle) -> Result<BoxedLayer, String> {
        let levels = parse_levels(&hook.levels)?;
        let relay = {
            let _guard = rt.enter();
            relay(hook)?
        };
        let (outbox, rx) = Outbox::new("mail");
        rt.spawn(send_all(rx, relay));
        let most_verbose = levels.iter().max().copied().unwrap_or(Level::ERROR);
        let hook = MailHook {
            levels,
            outbox: Arc::new(outbox),
        };
        Ok(hook
            .with_filter(LevelFilter::from_level(most_verbose))
            .boxed())
    }
}

impl Layer<Registry> for MailHook {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, Registry>) {
        let meta = event.metadata();
        if is_own(meta) || !self.levels.contains(meta.level()) {
            return;
        }
        self.outbox.push(Captured::from_event(event));
    }
}

/// distribution's level names (logrus): panic and fatal are wharf's error.
fn parse_levels(levels: &[String]) -> Result<Vec<Level>, String> {
    if levels.is_empty() {
        return Err("levels: at least one level is required".to_owned());
    }
    levels
        .iter()
        .map(|l| match l.trim().to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => Ok(Level::ERROR),
            "warn" | "warning" => Ok(Level::WARN),
            "info" => Ok(Level::INFO),
            "debug" => Ok(Level::DEBUG),
            "trace" => Ok(Level::TRACE),
            _ => Err(format!(
                "levels: unknown level {l:?} (panic, fatal, error, warn, info, debug, trace)"
            )),
        })
        .collect()
}

/// `host:port` (port 25 when absent).
fn split_addr(addr: &str) -> Result<(String, u16), String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err("options.smtp.addr is required".to_owned());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.trim_matches(['[', ']']).to_owned(), p))
            .map_err(|_| format!("options.smtp.addr: invalid port in {addr:?}")),
        None => Ok((addr.to_owned(), 25)),
    }
}

fn relay(hook: &LogHook) -> Result<Relay, String> {
    let o = &hook.options;
    let (host, port) = split_addr(&o.smtp.addr)?;
    let from: Mailbox = o
        .from
        .parse()
        .map_err(|e| format!("options.from: {:?}: {e}", o.from))?;
    if o.to.is_empty() {
        return Err("options.to: at least one recipient is required".to_owned());
    }
    let to =
        o.to.iter()
            .map(|t| t.parse().map_err(|e| format!("options.to: {t:?}: {e}")))
            .collect::<Result<Vec<Mailbox>, String>>()?;
    let tls = if o.smtp.insecure {
        Tls::None
    } else {
        let params = TlsParameters::builder(host.clone())
            .build_rustls()
            .map_err(|e| format!("options.smtp: TLS setup: {e}"))?;
        if port == 465 {
            Tls::Wrapper(params)
        } else {
            Tls::Opportunistic(params)
        }
    };
    let me = super::hostname();
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain(me.clone()));
    if !o.smtp.username.is_empty() {
        let password = o
            .smtp
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder
            .credentials(Credentials::new(o.smtp.username.clone(), password))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(Relay {
        transport: builder.build(),
        from,
        to,
        host: me,
    })
}

/// The sender task: one mail per queued event, in order; failures are logged and dropped.
async fn send_all(mut rx: tokio::sync::mpsc::Receiver<Captured>, relay: Relay) {
    while let Some(event) = rx.recv().await {
        let mail = match letter(&relay, &event) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(target: SELF_TARGET, error = %e, "mail hook: cannot build the mail");
                continue;
            }
        };
        if let Err(e) = relay.transport.send(mail).await {
            tracing::warn!(target: SELF_TARGET, error = %e, "mail hook: sending failed");
        }
    }
}

fn letter(relay: &Relay, event: &Captured) -> Result<Message, lettre::error::Error> {
    let level = event.level.as_str().to_ascii_lowercase();
    let mut message: String = event
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(SUBJECT_MAX)
        .collect();
    if message.len() < event.message.len() && event.message.chars().count() > SUBJECT_MAX {
        message.push('…');
    }
    let subject = format!("[{level}] {}: {message}", relay.host);
    let body = format!(
        "{}\n\nlevel: {level}\ntime: {}\n{}",
        event.message,
        crate::rfc3339::seconds(event.time),
        event.field_lines()
    );
    let mut b = Message::builder()
        .from(relay.from.clone())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &relay.to {
        b = b.to(to.clone());
    }
    b.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_addresses() {
        let l = |v: &[&str]| parse_levels(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(l(&["panic", "Fatal", "error"]).unwrap(), [Level::ERROR; 3]);
        assert_eq!(l(&["warning"]).unwrap(), [Level::WARN]);
        assert!(l(&["loud"]).unwrap_err().contains("\"loud\""));
        assert!(l(&[]).is_err());
        assert_eq!(
            split_addr("smtp.example:587").unwrap(),
            ("smtp.example".into(), 587)
        );
        assert_eq!(
            split_addr("smtp.example").unwrap(),
            ("smtp.example".into(), 25)
        );
        assert!(split_addr("h:x").is_err());
        assert!(split_addr("").is_err());
    }
}
