//! The one JSON error body of the public contract:
//! `{"error": {"code": "snake_case", "message": "human text"}}`.

use serde::{Deserialize, Serialize};

/// The body every HTTP service sends with a 4xx or 5xx status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable, `snake_case`.
    pub code: String,
    /// For people; never carries internals (paths, addresses, backtraces).
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code: code.into(), message: message.into() } }
    }

    /// The body serialised; cannot fail for this shape.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_the_contract() {
        let body = ErrorBody::new("room_not_found", "No room of that name.");
        let v: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "room_not_found");
        assert_eq!(v["error"]["message"], "No room of that name.");
    }
}
