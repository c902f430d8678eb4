//! A minimal HTTP/1.1 server on 127.0.0.1 for the test package indexes (pip and conda):
//! keep-alive, GET and HEAD, a `Date` header (HTTP caches need it), one thread a connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// What a handler answers.
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(content_type: &'static str, cache_control: &'static str, body: Vec<u8>) -> Response {
        Response {
            status: "200 OK",
            content_type,
            cache_control,
            body,
        }
    }

    /// `401 Unauthorized` (a private index without the right `Authorization` header).
    pub fn unauthorized() -> Response {
        Response {
            status: "401 Unauthorized",
            content_type: "text/plain",
            cache_control: "no-store",
            body: b"unauthorized\n".to_vec(),
        }
    }

    pub fn not_found() -> Response {
        Response {
            status: "404 Not Found",
            content_type: "text/plain",
            cache_control: "no-store",
            body: b"not found\n".to_vec(),
        }
    }
}

/// Serve on a free loopback port; `handler(method, path)` answers each request, `path` without
/// query or fragment and percent-decoded. Returns the port. The threads live as long as the
/// test process.
pub fn serve(handler: impl Fn(&str, &str) -> Response + Send + Sync + 'static) -> u16 {
    serve_with_headers(move |method, path, _headers| handler(method, path))
}

/// A request's headers: (name lower-cased, value trimmed).
pub type Headers = [(String, String)];

/// Like [`serve`], but the handler also gets the request's headers (names lower-cased,
/// values trimmed), e.g. to check `authorization`.
pub fn serve_with_headers(
    handler: impl Fn(&str, &str, &Headers) -> Response + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local addr").port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let _ = connection(stream, handler.as_ref());
            });
        }
    });
    port
}

fn connection(
    mut stream: TcpStream,
    handler: &dyn Fn(&str, &str, &Headers) -> Response,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        // The headers (GET and HEAD carry no body).
        let mut headers = vec![];
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let mut parts = request.split_whitespace();
        let method = parts.next().unwrap_or("GET").to_string();
        let raw = parts
            .next()
            .unwrap_or("/")
            .split(['?', '#'])
            .next()
            .unwrap_or("/");
        let path = percent_decode(raw);
        let r = handler(&method, &path, &headers);
        write!(
            stream,
            "HTTP/1.1 {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: {}\r\nConnection: keep-alive\r\n\r\n",
            r.status,
            httpdate::fmt_http_date(std::time::SystemTime::now()),
            r.content_type,
            r.body.len(),
            r.cache_control,
        )?;
        if !method.eq_ignore_ascii_case("HEAD") {
            stream.write_all(&r.body)?;
        }
        stream.flush()?;
    }
}

/// `%2B` → `+` (pip quotes the `+` of local versions in file URLs).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(
            percent_decode("/files/torch-2.1.2%2Bcpu.whl"),
            "/files/torch-2.1.2+cpu.whl"
        );
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("a%2B"), "a+");
    }
}
