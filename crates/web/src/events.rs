//! `GET /api/events`: live events as server-sent events. Each client reads from the broadcast
//! channel at its own pace; one that falls more than the channel's capacity behind misses the
//! oldest events, is told so with a `lagged` event, and the misses are counted.

use crate::server::{ApiError, App};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Decrements the connected-clients gauge when a stream ends.
struct Connected(Arc<App>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.shared.http.events_clients.fetch_sub(1, Relaxed);
    }
}

/// Live-event clients served at once; more are refused until one leaves.
pub const MAX_CLIENTS: u64 = 256;

pub(crate) async fn events(
    State(app): State<Arc<App>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let clients = &app.shared.http.events_clients;
    if clients.fetch_add(1, Relaxed) >= MAX_CLIENTS {
        clients.fetch_sub(1, Relaxed);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_CLIENTS} clients already follow the live events"),
        ));
    }
    let rx = app.shared.subscribe();
    let every = Duration::from_secs(app.config.status_seconds.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (rx, ticker, Connected(Arc::clone(&app)));
    let stream = futures_util::stream::unfold(state, |(mut rx, mut ticker, guard)| async move {
        let event = tokio::select! {
            r = rx.recv() => match r {
                Ok(e) => Event::default().id(e.id.to_string()).event(e.name).data(&e.data),
                Err(RecvError::Lagged(n)) => {
                    guard.0.shared.http.events_lagged.fetch_add(n, Relaxed);
                    Event::default().event("lagged").data(format!("{{\"missed\":{n}}}"))
                }
                Err(RecvError::Closed) => return None,
            },
            _ = ticker.tick() => {
                let status = crate::api::status_json(&guard.0);
                Event::default().event("status").data(status.to_string())
            }
        };
        Some((Ok(event), (rx, ticker, guard)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
