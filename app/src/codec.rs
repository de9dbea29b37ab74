//! How server functions send their answers to the browser: JSON, as Leptos's own `Json`, except
//! that the browser reads it from text.
//!
//! A page's resources reach the browser inside the server's HTML as JSON text, which Leptos reads
//! with `serde_json::from_str`; Leptos's `Json` output reads a server function's answer from bytes
//! (`from_slice`). Each reader gives every answer type a copy of its decoding code, so the two
//! doubled that code in the WebAssembly. Reading answers as text too leaves one copy. The wire
//! format is unchanged: `application/json`, the same bytes.

use leptos::server_fn::{codec::Post, Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// The output encoding of every server function: `#[server(output = JsonText)]`.
pub type JsonText = Post<JsonAsText>;

pub struct JsonAsText;

impl ContentType for JsonAsText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonAsText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonAsText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonAsText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text =
            std::str::from_utf8(&bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_text_are_what_was_sent() {
        let sent = vec![("Ada".to_owned(), 1_i64), ("Grace".to_owned(), 2)];
        let bytes = <JsonAsText as Encodes<_>>::encode(&sent).unwrap();
        let read: Vec<(String, i64)> = <JsonAsText as Decodes<_>>::decode(bytes).unwrap();
        assert_eq!(read, sent);
        let broken = Bytes::from_static(b"[\"\xff\"]");
        assert!(<JsonAsText as Decodes<Vec<String>>>::decode(broken).is_err());
    }
}
