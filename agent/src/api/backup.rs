//! `GET /api/v1/backup` (role `admin`): a consistent snapshot of the live
//! state file, streamed as a backup (`store::backup` describes the format;
//! `slo-agent backup --url …` asks for it and checks it).
//!
//! The snapshot is staged beside the state file (the only volume an agent
//! on a read-only root file system may write) and deleted once sent. The
//! call is audited as `state.backup` before the snapshot is taken, so the
//! backup holds the record of its own taking.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::auth::Caller;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/backup", get(backup))
}

async fn backup(State(s): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>) -> Response {
    let state = s.clone();
    let taken = tokio::task::spawn_blocking(move || {
        let at = state.clock.now_ms();
        super::auth::record(&state, &caller.audit(at, "state.backup", None, "ok"));
        let taken = state.store.backup();
        if let Err(e) = &taken {
            let why = format!("error: {e}");
            super::auth::record(&state, &caller.audit(state.clock.now_ms(), "state.backup", None, &why));
        }
        taken.and_then(|t| Ok((t.open_payload()?, t)))
    })
    .await;
    let (file, taken) = match taken {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a backup failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("taking the backup: {e}"));
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    tracing::info!(bytes = taken.bytes(), write_seq = taken.header.write_seq, "a backup was taken through the API");
    let len = taken.bytes();
    let name = format!("slo-agent-{}.backup", crate::timefmt::compact(taken.header.created_ms));
    let envelope = bytes::Bytes::from(taken.envelope.clone());
    // The payload file stays open (and `taken` alive, deleting the file
    // when the body is done or the client goes away).
    let payload = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024);
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(envelope) }),
        futures_util::StreamExt::map(payload, move |chunk| {
            let _keep = &taken;
            chunk
        }),
    );
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
