//! Logs: tracing to stderr (set up by the CLI), and at info and above also to the client's log
//! (`window/logMessage`) through [`ClientLogLayer`], once the stdio server has attached its client.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::MessageType;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

static FORWARD: AtomicBool = AtomicBool::new(false);
static SINK: Mutex<Option<UnboundedSender<(MessageType, String)>>> = Mutex::new(None);

/// Called by the stdio server: only then do log events reach a client (in-process test servers share
/// one global subscriber, so they do not forward).
pub fn enable_forwarding() {
    FORWARD.store(true, Ordering::SeqCst);
}

/// Forwards log events to `client` until [`detach`].
pub fn attach(client: Client) {
    if !FORWARD.load(Ordering::SeqCst) {
        return;
    }
    let (tx, mut rx) = unbounded_channel::<(MessageType, String)>();
    *SINK.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    tokio::spawn(async move {
        while let Some((typ, msg)) = rx.recv().await {
            client.log_message(typ, msg).await;
        }
    });
}

pub fn detach() {
    *SINK.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// A tracing layer sending Conductor's own info/warn/error events to the client's log.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientLogLayer;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for ClientLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::INFO || !meta.target().starts_with("conductor") {
            return;
        }
        let guard = SINK.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else { return };
        let typ = match *meta.level() {
            Level::ERROR => MessageType::ERROR,
            Level::WARN => MessageType::WARNING,
            _ => MessageType::INFO,
        };
        let mut msg = Message(String::new());
        event.record(&mut msg);
        let _ = tx.send((typ, msg.0));
    }
}
