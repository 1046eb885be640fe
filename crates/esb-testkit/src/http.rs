//! A small blocking HTTP/1.1 client for tests: keep-alive, Content-Length and chunked bodies.
//!
//! It sends exactly the bytes asked for (no hidden headers beyond `Host` and `Content-Length`),
//! so tests can also send odd requests with [`Client::send_raw`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names as received; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy), for messages and comparisons.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Client {
    /// Connects to `127.0.0.1:port` with `TCP_NODELAY` and a 60 s read timeout.
    pub fn connect(port: u16) -> io::Result<Client> {
        Client::connect_addr(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    pub fn connect_addr(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            host: addr.to_string(),
        })
    }

    /// Changes the read timeout (a request that takes longer fails with `WouldBlock`/`TimedOut`).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// `POST path` with `body` and extra `headers`.
    pub fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.request("POST", path, headers, body)
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.request("GET", path, &[], b"")
    }

    /// Any request. `Content-Length` is added for every method but GET/HEAD with an empty body.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (n, v) in headers {
            head.push_str(n);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        if !(body.is_empty() && (method == "GET" || method == "HEAD")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.send_raw(&req)?;
        self.read_response(method == "HEAD")
    }

    /// Writes raw bytes (a whole request, or part of one).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one response. `head_only` for responses to HEAD.
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        loop {
            let res = self.read_one(head_only)?;
            // Interim 1xx responses (100 Continue) precede the real one.
            if !(100..200).contains(&res.status) {
                return Ok(res);
            }
        }
    }

    fn read_one(&mut self, head_only: bool) -> io::Result<Response> {
        let mut head = Vec::with_capacity(512);
        loop {
            let n = self.reader.read_until(b'\n', &mut head)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
                break;
            }
            if head.len() > 64 * 1024 {
                return Err(invalid("response head over 64 KiB"));
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(invalid("partial response head")),
            Err(e) => return Err(invalid(&format!("bad response head: {e}"))),
        }
        let status = parsed.code.unwrap_or(0);
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if !head_only && !(100..200).contains(&status) && status != 204 && status != 304 {
            if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                self.read_chunked(&mut body)?;
            } else if let Some(len) = find("content-length") {
                let len: usize = len
                    .trim()
                    .parse()
                    .map_err(|_| invalid("bad content-length"))?;
                body.resize(len, 0);
                self.reader.read_exact(&mut body)?;
            } else {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>) -> io::Result<()> {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = String::new();
                    if self.reader.read_line(&mut t)? == 0 || t == "\r\n" {
                        return Ok(());
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }
}

/// One request on a fresh connection.
pub fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
    Client::connect(port)?.post(path, headers, body)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves each canned response in turn on one accepted connection, checking the request.
    fn serve(responses: Vec<&'static [u8]>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut s = s;
            for res in responses {
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                s.write_all(res).unwrap();
            }
        });
        port
    }

    #[test]
    fn keep_alive_content_length_chunked_and_interim_responses() {
        let port = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\nT: v\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ]);
        let mut c = Client::connect(port).unwrap();
        let r = c.post("/a", &[("X-Test", "1")], b"{}").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("x-a"), Some("b"));
        let r = c.post("/b", &[], b"xyz").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (202, &b"abcde"[..]));
        let r = c.get("/c").unwrap();
        assert_eq!(r.status, 404);
        assert!(r.body.is_empty());
    }

    #[test]
    fn a_closed_connection_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || drop(l.accept().unwrap()));
        let mut c = Client::connect(port).unwrap();
        t.join().unwrap();
        assert!(c.get("/").is_err());
    }
}
