//! Just enough `multipart/form-data` reading for the document upload: the server crate does
//! not enable axum's multipart extractor, and one part with a file name is all HiBob takes.

pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let media = pieces.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    pieces.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `None` when the body is not a well-formed multipart body for this boundary.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let opening = format!("--{boundary}");
    let separator = format!("\r\n--{boundary}");
    let mut pos = find(body, opening.as_bytes())? + opening.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(pos..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        let rest = rest.strip_prefix(b"\r\n")?;
        let start = body.len() - rest.len();
        let end = start + find(rest, separator.as_bytes())?;
        parts.push(read_part(&body[start..end])?);
        pos = end + separator.len();
    }
}

fn read_part(raw: &[u8]) -> Option<Part> {
    let split = find(raw, b"\r\n\r\n");
    let (head, data) = match split {
        Some(at) => (&raw[..at], &raw[at + 4..]),
        // a part with headers and an empty body may end right after the blank line
        None => (raw.strip_suffix(b"\r\n").unwrap_or(raw), &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    Some(Part {
        name: name?,
        filename,
        content_type,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_read() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc123").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"x y\"").as_deref(),
            Some("x y")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn parts_are_split_even_around_binary_data() {
        let body = b"--b0\r\n\
Content-Disposition: form-data; name=\"note\"\r\n\r\n\
hello\r\n\
--b0\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"Ada_CV.pdf\"\r\n\
Content-Type: application/pdf\r\n\r\n\
%PDF\r\n--b\x00\xff\r\n\
--b0--\r\n";
        let parts = parse(body, "b0").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "note");
        assert_eq!(parts[0].data, b"hello");
        assert_eq!(parts[1].filename.as_deref(), Some("Ada_CV.pdf"));
        assert_eq!(parts[1].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(parts[1].data, b"%PDF\r\n--b\x00\xff");
        assert!(parse(b"garbage", "b0").is_none());
        assert!(parse(
            b"--b0\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end",
            "b0"
        )
        .is_none());
    }
}
