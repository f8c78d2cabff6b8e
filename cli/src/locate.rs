//! Asking aux-srv where a room lives: `PUT /api/rooms/{room}` creates it
//! if needed and answers with the websocket URL of its backend.

use http::Method;
use serde::Deserialize;

use crate::error::CliError;
use crate::room_url::RoomUrl;
use crate::transport::Connector;

/// What aux-srv says about the room.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomAnswer {
    /// The name as its creator typed it.
    pub name: String,
    pub ws_url: String,
    #[serde(default)]
    pub files_url: String,
    #[serde(default)]
    pub created: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Creates or opens the room; `password` only matters when it is created.
pub async fn locate(
    connector: &Connector,
    room: &RoomUrl,
    password: Option<&str>,
) -> Result<RoomAnswer, CliError> {
    let url = room.api_url();
    let body = match password {
        Some(p) => serde_json::json!({ "password": p }),
        None => serde_json::json!({}),
    };
    let headers: Vec<(&str, &str)> = password.map(|p| ("x-room-password", p)).into_iter().collect();
    let answer = connector.request(Method::PUT, &url, &headers, body.to_string()).await?;
    if answer.status == 200 || answer.status == 201 {
        let found: RoomAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| CliError::BadAnswer { url: url.clone(), why: e.to_string() })?;
        tracing::debug!(ws_url = %found.ws_url, created = found.created, "room located");
        return Ok(found);
    }
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("unknown".to_owned(), String::from_utf8_lossy(&answer.body).into_owned()),
    };
    Err(CliError::Refused { url, status: answer.status, code, message })
}
