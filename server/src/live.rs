//! `GET /events`: the change notices of the integration core as server-sent events, so open
//! console pages reload what they show when exports move. Only signed-in people get the stream
//! (the console's sign-in guard sits in front of it); notices carry ids and statuses, no names.

use std::{convert::Infallible, time::Duration};

use app::ssr::ConsoleState;
use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::Stream;
use integration::live::{Change, Changes, Subscription};

pub const EVENTS_PATH: &str = "/events";
/// Comments sent on a quiet stream so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often an open stream checks that its session is still valid (not signed out, disabled or
/// expired); a stream that outlives its session ends.
const SESSION_RECHECK: Duration = Duration::from_secs(60);

pub async fn events(
    State(console): State<ConsoleState>,
    session: tower_sessions::Session,
) -> impl IntoResponse {
    let notices = console.changes.subscribe();
    let sse = Sse::new(stream(console, session, notices))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"));
    // a buffering proxy would hold the notices back
    (
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        sse,
    )
}

fn stream(
    console: ConsoleState,
    session: tower_sessions::Session,
    notices: Subscription,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.reset();
    futures_util::stream::unfold(
        (console, session, notices, recheck),
        |(console, session, mut notices, mut recheck)| async move {
            loop {
                tokio::select! {
                    change = notices.next() => {
                        // `None`: the server is shutting down; ending the stream lets it
                        let change = change?;
                        let event = Event::default()
                            .json_data(&change)
                            .unwrap_or_else(|_| Event::default().comment("unencodable notice"));
                        return Some((Ok(event), (console, session, notices, recheck)));
                    }
                    _ = recheck.tick() => {
                        if !matches!(app::ssr::session_user(&console, &session).await, Ok(Some(_))) {
                            return None;
                        }
                    }
                }
            }
        },
    )
}

/// A plugin submit creates or finishes an export while Pinpoint waits, outside the queue: once
/// it has answered, open pages reload everything (the submit does not say which export).
pub async fn after_plugin_submit(
    State(changes): State<Changes>,
    req: Request,
    next: Next,
) -> Response {
    let submit = req.uri().path() == integration::plugin::service::SUBMIT_PATH;
    let res = next.run(req).await;
    // a refused call (bad token, malformed body) changed nothing
    if submit && res.status().is_success() {
        changes.publish(Change::Resync);
    }
    res
}
