//! Incremental decoder for `Transfer-Encoding: chunked` bodies, for client requests and for
//! upstream responses alike.
//!
//! Hot path: runs over every chunked body byte; data is copied with one `extend_from_slice` per
//! chunk piece, the framing bytes go through a small state machine.

use crate::HttpError;
use crate::fields::{is_field_vchar, is_tchar};

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used. All of the input unless `done`: after the last chunk and the trailers,
    /// the rest of the input belongs to the next message.
    pub consumed: usize,
    /// The body is complete (final chunk, trailers and the last CRLF were read).
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size (`digits` so far).
    Size {
        digits: u8,
    },
    /// After `;`: a chunk extension, ignored but bounded.
    Extension,
    /// After the CR ending the size line.
    SizeLf,
    /// Inside chunk data, `remaining` bytes to go.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
    Failed(HttpError),
}

/// Decodes a chunked body incrementally: feed whatever bytes arrived, get the data appended to a
/// buffer, until [`Decoded::done`].
///
/// Strict (checklist A7/A8): chunk sizes are 1–16 hex digits with nothing before them and only
/// `;` or CRLF after them (no sign, `0x`, `_` or whitespace; more digits would overflow u64 and
/// are refused); every line ends in exactly CRLF; chunk extensions are ignored but their total
/// size is bounded; trailers are checked for shape, bounded, and **discarded**, so a trailer can
/// never add `Content-Length`, `Host`, `Authorization` or any other field to the request.
/// A chunk that would take the decoded body past `max_body` is refused with 413 as soon as its
/// size line is read, before its data. After an error every call returns the same error.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then the bytes of it still to come.
    remaining: u64,
    /// Decoded body bytes so far (across calls, whatever the caller did with `out`).
    body_len: u64,
    extension_bytes: usize,
    trailer_bytes: usize,
    max_extension_bytes: usize,
    max_trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// Bound on all chunk extensions of one body together (they carry nothing esb uses).
    pub const DEFAULT_MAX_EXTENSION_BYTES: usize = 1024;
    /// Bound on all trailer bytes of one body, final CRLF excluded.
    pub const DEFAULT_MAX_TRAILER_BYTES: usize = 8 * 1024;

    /// A decoder at the start of a body, with the default extension and trailer bounds.
    pub fn new() -> Self {
        Self::with_limits(
            Self::DEFAULT_MAX_EXTENSION_BYTES,
            Self::DEFAULT_MAX_TRAILER_BYTES,
        )
    }

    /// A decoder with explicit bounds: more extension bytes → 400, more trailer bytes → 431.
    pub fn with_limits(max_extension_bytes: usize, max_trailer_bytes: usize) -> Self {
        Self {
            state: State::Size { digits: 0 },
            remaining: 0,
            body_len: 0,
            extension_bytes: 0,
            trailer_bytes: 0,
            max_extension_bytes,
            max_trailer_bytes,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Decodes from `input`, appending body data to `out`. `max_body` bounds the total decoded
    /// size over all calls (413 beyond it). Once `done`, further calls consume nothing.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: usize,
    ) -> Result<Decoded, HttpError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        match self.run(input, out, max_body as u64) {
            Ok(d) => Ok(d),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn run(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: u64,
    ) -> Result<Decoded, HttpError> {
        const BAD_SIZE: HttpError = HttpError::BadRequest("invalid chunk size");
        const BAD_CRLF: HttpError = HttpError::BadRequest("chunk framing without CRLF");
        const BAD_TRAILER: HttpError = HttpError::BadRequest("invalid trailer field");
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => {
                    if let Some(d) = hex_value(b) {
                        if digits == 16 {
                            return Err(HttpError::BadRequest("chunk size overflows"));
                        }
                        self.remaining = (self.remaining << 4) | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    } else {
                        if digits == 0 {
                            return Err(BAD_SIZE);
                        }
                        self.state = match b {
                            b';' => State::Extension,
                            b'\r' => State::SizeLf,
                            _ => return Err(BAD_SIZE),
                        };
                        // Refuse an oversized chunk before reading any of its data.
                        if self.remaining > max_body.saturating_sub(self.body_len) {
                            return Err(HttpError::PayloadTooLarge);
                        }
                    }
                    i += 1;
                }
                State::Extension => {
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if is_field_vchar(b) {
                        self.extension_bytes += 1;
                        if self.extension_bytes > self.max_extension_bytes {
                            return Err(HttpError::BadRequest("chunk extensions too long"));
                        }
                    } else {
                        return Err(HttpError::BadRequest("invalid chunk extension"));
                    }
                    i += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BAD_CRLF);
                    }
                    self.state = if self.remaining == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                    i += 1;
                }
                State::Data => {
                    let avail = input.len() - i;
                    let take = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.remaining -= take as u64;
                    self.body_len += take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BAD_CRLF);
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BAD_CRLF);
                    }
                    self.state = State::Size { digits: 0 };
                    i += 1;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::FinalLf;
                    } else if is_tchar(b) {
                        self.state = State::TrailerName;
                        self.count_trailer_byte()?;
                    } else {
                        // Covers obs-fold (SP/HTAB), bare LF and control bytes.
                        return Err(BAD_TRAILER);
                    }
                    i += 1;
                }
                State::TrailerName => {
                    self.state = if b == b':' {
                        State::TrailerValue
                    } else if is_tchar(b) {
                        State::TrailerName
                    } else {
                        return Err(BAD_TRAILER);
                    };
                    i += 1;
                    self.count_trailer_byte()?;
                }
                State::TrailerValue => {
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if !is_field_vchar(b) {
                        return Err(BAD_TRAILER);
                    }
                    i += 1;
                    self.count_trailer_byte()?;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(BAD_CRLF);
                    }
                    self.state = State::TrailerStart;
                    i += 1;
                    self.count_trailer_byte()?;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(BAD_CRLF);
                    }
                    self.state = State::Done;
                    i += 1;
                }
                State::Done => break,
                State::Failed(e) => return Err(e),
            }
        }
        Ok(Decoded {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn count_trailer_byte(&mut self) -> Result<(), HttpError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer_bytes {
            return Err(HttpError::TrailersTooLarge);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
