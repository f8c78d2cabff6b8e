//! A request head's faults that hyper would answer with an empty body, and
//! the contract's JSON answer the stream writes instead ([`crate::head`]).

use std::fmt::Write as _;

use common::http_error::ErrorBody;
use http::StatusCode;

use crate::head::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_REQUEST_LINE_BYTES};
use crate::request::ERROR_HEADERS;

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    UriTooLong,
    HeadTooLarge,
    BadContentLength,
    BadTransferEncoding,
    LengthAndEncoding,
}

impl Fault {
    pub fn status(self) -> StatusCode {
        match self {
            Fault::UriTooLong => StatusCode::URI_TOO_LONG,
            Fault::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Fault::UriTooLong => "uri_too_long",
            Fault::HeadTooLarge => "headers_too_large",
            _ => "bad_request",
        }
    }

    fn message(self) -> String {
        match self {
            Fault::UriTooLong => {
                format!("The request line may be at most {MAX_REQUEST_LINE_BYTES} bytes.")
            }
            Fault::HeadTooLarge => format!(
                "The request headers may be at most {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} lines."
            ),
            Fault::BadContentLength => "Content-Length must be one decimal number.".to_owned(),
            Fault::BadTransferEncoding => {
                "The only Transfer-Encoding served is chunked, in HTTP/1.1.".to_owned()
            }
            Fault::LengthAndEncoding => {
                "Content-Length and Transfer-Encoding may not both be sent.".to_owned()
            }
        }
    }

    /// The whole answer as it goes on the wire: the contract's JSON error
    /// (with `request::error`'s headers), and the connection closes after it.
    pub fn response(self) -> Vec<u8> {
        let status = self.status();
        let body = ErrorBody::new(self.code(), self.message()).to_json();
        let reason = status.canonical_reason().unwrap_or("");
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16());
        for (name, value) in ERROR_HEADERS {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "connection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        out.into_bytes()
    }
}
