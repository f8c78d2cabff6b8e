//! A room's address as people share it: `http(s)://host[:port][/prefix]/room`.
//!
//! The last path segment is the room (percent-decoded); everything before it
//! is where aux-srv's API lives. A `#fragment` (the page's `#owner=…`) and a
//! `?query` are ignored, so a link copied from the browser works as it is.

use http::Uri;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::CliError;

/// Everything but the characters a room name may use unencoded in a path.
const PATH_SEGMENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A parsed room link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUrl {
    /// `http://host:port` or `https://host[/prefix]`, without a trailing slash.
    pub base: String,
    /// The room name as typed in the link (decoded).
    pub room: String,
    pub secure: bool,
}

impl RoomUrl {
    pub fn parse(link: &str) -> Result<RoomUrl, CliError> {
        let bad = |why: &str| CliError::BadRoomUrl { url: link.to_owned(), why: why.to_owned() };
        let without_fragment = link.split('#').next().unwrap_or_default().trim();
        let uri: Uri = without_fragment.parse().map_err(|_| bad("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("it must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("it names no host"))?;
        let path = uri.path().trim_end_matches('/');
        let (prefix, raw_room) = path.rsplit_once('/').unwrap_or(("", path));
        if raw_room.is_empty() {
            return Err(bad("it names no room (expected …/ROOM)"));
        }
        let room = percent_decode_str(raw_room)
            .decode_utf8()
            .map_err(|_| bad("the room name is not UTF-8"))?
            .into_owned();
        let scheme = if secure { "https" } else { "http" };
        Ok(RoomUrl { base: format!("{scheme}://{authority}{prefix}"), room, secure })
    }

    /// `PUT` here to create or open the room.
    pub fn api_url(&self) -> String {
        format!("{}/api/rooms/{}", self.base, utf8_percent_encode(&self.room, PATH_SEGMENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_as_people_share_them() {
        let plain = RoomUrl::parse("http://127.0.0.1:8080/team-chat").unwrap();
        assert_eq!(plain.base, "http://127.0.0.1:8080");
        assert_eq!(plain.room, "team-chat");
        assert!(!plain.secure);
        assert_eq!(plain.api_url(), "http://127.0.0.1:8080/api/rooms/team-chat");

        let owner = RoomUrl::parse("https://chat.example/caf%C3%A9/#owner=abc").unwrap();
        assert_eq!((owner.base.as_str(), owner.room.as_str()), ("https://chat.example", "café"));
        assert!(owner.secure);
        assert_eq!(owner.api_url(), "https://chat.example/api/rooms/caf%C3%A9");

        let prefixed = RoomUrl::parse("https://example.org/chat/Room.1?x=1").unwrap();
        assert_eq!(prefixed.base, "https://example.org/chat");
        assert_eq!(prefixed.room, "Room.1");
    }

    #[test]
    fn bad_links_say_why() {
        for (link, why) in [
            ("ws://h/room", "http:// or https://"),
            ("http://h/", "no room"),
            ("http://h", "no room"),
            ("team-chat", "http:// or https://"),
            ("http://h/%FF", "UTF-8"),
        ] {
            let err = RoomUrl::parse(link).unwrap_err().to_string();
            assert!(err.contains(why), "{link}: {err}");
        }
    }
}
